"""tools/analysis/benchmark.py in a real subprocess, reduced to tiny sizes and one repeat."""
import json
import os.path as osp

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
                                                         fast=False)
    for res in record['results'].values():
        assert res['images_per_s']['median'] > 0 and len(res['times_s']) == 1
        assert res['latency_ms']['median'] > 0
        assert res['peak_memory_mib'] is not None and res['peak_memory_mib'] >= 0
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


def test_bad_arguments_are_clear_errors():
    proc = run_tool(['tools/analysis/benchmark.py', '--mode', 'train-model'], check=False)
    assert proc.returncode != 0 and '--mode train-model needs --config' in proc.stderr
    proc = run_tool(['tools/analysis/benchmark.py', '--mode', 'train-model', '--config',
                     'configs/nope.py'], check=False)
    assert proc.returncode != 0 and 'configs/nope.py: no such file' in proc.stderr
