"""tools/analysis/benchmark.py in a real subprocess, reduced to tiny sizes and one repeat."""
import json
import os.path as osp

import pytest
from conftest import run_tool


def load(path):
    with open(path) as f:
        return json.load(f)


def test_compare_timm_writes_the_record(tmp_path):
    out = str(tmp_path / 'infer.json')
    proc = run_tool(['tools/analysis/benchmark.py', '--arch', 'atto', '--batch', '2',
                     '--input-size', '32', '32', '--threads', '1', '--warmup', '1',
                     '--repeats', '1', '--fast', '--compare', 'timm', '--compare', 'mmpretrain',
                     '--compare-settings', 'eager-fp32', '--also-plain', '--out', out])
    # mmpretrain is a test requirement (the peer implementation), so it is compared too.
    assert 'mmpretrain is not installed' not in proc.stdout
    assert 'ours/timm:' in proc.stdout and 'ours/mmpretrain:' in proc.stdout
    record = load(out)
    machine = record['machine']
    assert machine['cpu_model'] and machine['logical_cores'] >= 1
    assert machine['torch'] and machine['timm'] and 'gpu' in machine
    assert record['settings']['input_size'] == [32, 32] and record['settings']['batch'] == 2
    assert set(record['results']) == {'ours', 'ours-plain', 'timm', 'mmpretrain'}
    assert record['results']['ours']['settings']['fast'] is True
    assert record['results']['timm']['settings'] == dict(name='timm', dtype='fp32',
                                                         channels_last=False, compile=False,
                                                         fast=False, freeze=False)
    for res in record['results'].values():
        assert res['images_per_s']['median'] > 0 and len(res['times_s']) == 1
        assert res['latency_ms']['median'] > 0
        assert res['peak_memory_mib'] is not None and res['peak_memory_mib'] >= 0
    # The roofline: fp32 and bf16 GEMMs timed in the same round, every model's fraction of
    # its dtype's rate; MACs are the analyzer's count of the preset at this input.
    roof = record['roofline']
    assert set(roof['gemm']) == {'fp32', 'bf16'} and roof['passes'] == 1
    assert 1e6 < roof['macs_per_image'] < 1e8
    for name, res in record['results'].items():
        model = roof['models'][name]
        gemm_time = roof['gemm'][model['dtype']]['times_s'][0]
        mac_s = res['images_per_s']['median'] * roof['macs_per_image']
        assert abs(model['fraction'] - mac_s * gemm_time / roof['gemm_side']**3) < 1e-6
    assert 'of fp32' in proc.stdout and 'matmul peak' in proc.stdout
    # Fidelity of our variants to the plain fp32 path (the plain path itself: exact).
    assert record['fidelity']['ours-plain']['rel_l2_error'] == 0.
    assert record['fidelity']['ours']['top1_agreement'] == 1.
    assert record['fidelity']['ours']['rel_l2_error'] < 1e-4  # fp32 fast path
    # One round: the per-round ratio and the ratio of medians are the same number.
    ratio = record['ratios']['ours/timm']
    times = {k: record['results'][k]['times_s'][0] for k in ('ours', 'timm')}
    assert abs(ratio - times['timm'] / times['ours']) < 1e-9
    assert abs(record['ratios_of_medians']['ours/timm'] - ratio) < 1e-6


def test_training_modes(tmp_path):
    out = str(tmp_path / 'train.json')
    run_tool(['tools/analysis/benchmark.py', '--mode', 'train', '--arch', 'atto', '--v2',
              '--with-cp', '--batch', '1', '--input-size', '32', '32', '--threads', '1',
              '--warmup', '0', '--repeats', '1', '--compare', 'timm', '--no-memory',
              '--out', out])
    record = load(out)
    assert record['settings']['mode'] == 'train' and record['settings']['with_cp'] is True
    assert set(record['results']) == {'ours', 'timm'}
    assert record['results']['ours']['peak_memory_mib'] is None

    out = str(tmp_path / 'model.json')
    config = osp.join('configs', 'detection', 'mask_rcnn_convnext_atto_shapes.py')
    run_tool(['tools/analysis/benchmark.py', '--mode', 'train-model', '--config', config,
              '--input-size', '64', '64', '--threads', '1', '--warmup', '0', '--repeats', '1',
              '--no-memory', '--out', out])
    record = load(out)
    assert record['settings']['config'] == config
    assert record['results']['ours']['images_per_s']['median'] > 0
    assert record['roofline']['passes'] == 3 and record['roofline']['models']['ours']['fraction']


@pytest.mark.slow
def test_train_model_beside_the_upstream_config(tmp_path):
    # MMDetection's own ConvNeXt-T Mask R-CNN (mmpretrain's backbone) beside ours, with its
    # weights copied into ours: the same step on the same input, so also the same losses.
    out = str(tmp_path / 'pair.json')
    proc = run_tool(['tools/analysis/benchmark.py', '--mode', 'train-model', '--config',
                     'configs/detection/mask_rcnn_convnext_t_coco.py', '--compare-config',
                     'mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
                     '--input-size', '64', '64', '--threads', '2', '--warmup', '0',
                     '--repeats', '1', '--no-memory', '--out', out])
    record = load(out)
    assert set(record['results']) == {'ours', 'upstream'}
    assert record['settings']['compare_config'].endswith(
        osp.join('.mim', 'configs', 'convnext',
                 'mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'))
    assert 'ours/upstream:' in proc.stdout
    losses = record['losses']
    assert set(losses['ours']) == set(losses['upstream']) and 'loss_mask' in losses['ours']
    for name, value in losses['upstream'].items():
        assert abs(losses['ours'][name] - value) <= 1e-4 * max(1., abs(value)), name


def test_bad_arguments_are_clear_errors():
    proc = run_tool(['tools/analysis/benchmark.py', '--freeze'], check=False)
    assert proc.returncode != 0 and '--freeze needs --compile' in proc.stderr
    proc = run_tool(['tools/analysis/benchmark.py', '--compare-config', 'x.py'], check=False)
    assert proc.returncode != 0 and '--compare-config applies to --mode train-model' in proc.stderr
    proc = run_tool(['tools/analysis/benchmark.py', '--mode', 'train-model'], check=False)
    assert proc.returncode != 0 and '--mode train-model needs --config' in proc.stderr
    proc = run_tool(['tools/analysis/benchmark.py', '--mode', 'train-model', '--config',
                     'configs/nope.py'], check=False)
    assert proc.returncode != 0 and 'configs/nope.py: no such file' in proc.stderr
