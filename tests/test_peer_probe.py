"""The plain-PyTorch peer runs (tools/analysis/peer_probe.py): real timm models and loops on
real shapes files, tiny; their mIoU definition checked against MMSegmentation's IoUMetric."""
import csv
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import load_tool, run_tool
from mmseg.evaluation import IoUMetric

from backbones.datasets.shapes import make_shapes

peer_probe = load_tool('analysis', 'peer_probe.py')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('peer_shapes'))
    make_shapes(root, seed=0, size=64, seg_train=6, seg_val=3, cls_train=24, cls_val=12,
                layouts=('ade', 'cls'))
    return root


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_norm_specs_swap_convnexts_norms():
    bn = peer_probe.build_timm_model('convnext_atto:bn', num_classes=4)
    ln = peer_probe.build_timm_model('convnext_atto:ln', num_classes=4)
    kinds = [{type(m).__name__ for m in model.modules()} for model in (bn, ln)]
    assert 'BatchNorm2d' in kinds[0] and not any('LayerNorm' in k for k in kinds[0])
    assert 'BatchNorm2d' not in kinds[1] and 'LayerNorm2d' in kinds[1]
    # Same architecture otherwise: only the norms' parameters (BN's running stats) differ.
    count = [sum(p.numel() for p in m.parameters()) for m in (bn, ln)]
    assert count[0] == count[1]
    with pytest.raises(ValueError, match='resnet18:bn'):
        peer_probe.build_timm_model('resnet18:bn')


def test_iou_matches_mmsegmentations_metric():
    rng = np.random.default_rng(0)
    label = torch.from_numpy(rng.integers(0, 4, (3, 16, 16)))
    pred = torch.where(torch.from_numpy(rng.random((3, 16, 16)) < 0.6), label,
                       torch.from_numpy(rng.integers(0, 4, (3, 16, 16))))
    pred[pred == 3] = 2  # a class never predicted
    ours = peer_probe.iou_per_class(pred, label, 4)
    sums = [sum(t) for t in zip(*(IoUMetric.intersect_and_union(p, lab, 4, 255)
                                  for p, lab in zip(pred, label)))]
    theirs = (100 * sums[0] / sums[1]).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert ours[3] == 0


@pytest.mark.parametrize('task, models, metric', [
    ('cls', ['convnext_atto:bn', 'resnet18'], 'top1'),
    ('seg', ['convnext_atto'], 'miou'),
])
def test_peer_probe_tool_writes_curves(shapes, tmp_path, task, models, metric):
    out = str(tmp_path / 'out')
    proc = run_tool(['tools/analysis/peer_probe.py', task, '--models', *models, '--steps', '4',
                     '--eval-every', '2', '--batch', '4', '--data', shapes, '--out', out],
                    timeout=300)
    rows = _read(osp.join(out, f'{task}.csv'))
    assert [(r['model'], int(r['step'])) for r in rows] == [(m, s) for m in models
                                                            for s in (2, 4)]
    for row in rows:
        assert 0 <= float(row[metric]) <= 100 and np.isfinite(float(row['loss']))
    assert osp.getsize(osp.join(out, f'{task}.png')) > 1000
    assert f'[peer {task}] {models[0]} step 2/4' in proc.stdout


def test_peer_probe_names_missing_data(tmp_path):
    proc = run_tool(['tools/analysis/peer_probe.py', 'seg', '--steps', '1', '--data',
                     str(tmp_path)], check=False)
    assert proc.returncode != 0
    assert osp.join(str(tmp_path), 'ade', 'images', 'training') in proc.stderr
    assert 'make_shapes.py' in proc.stderr


def test_plain_segmenter_is_a_real_fpn_style_head():
    model = peer_probe.PlainSegmenter('resnet18', num_classes=4).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 4, 64, 64)
    assert isinstance(model.fuse[1], nn.BatchNorm2d) and len(model.lateral) == 4


def _windows(model):
    """(window, shift) of every timm Swin block, stage by stage."""
    return [[(tuple(b.window_size), tuple(b.shift_size)) for b in stage.blocks]
            for stage in model.layers]


def test_swin_demo_is_the_demos_swin_with_both_small_map_rules():
    from mmdet.models.backbones import SwinTransformer
    from mmengine.config import Config

    cfg = Config.fromfile('configs/_base_/demo_backbones.py').swin_embed32
    _, preset = peer_probe.PRESETS['swin_demo']
    assert (preset['embed_dim'], list(preset['depths']), list(preset['num_heads']),
            preset['window_size']) == (cfg.embed_dims, cfg.depths, cfg.num_heads,
                                       cfg.window_size)
    theirs = SwinTransformer(**{k: v for k, v in cfg.items() if k != 'type'})
    ours = peer_probe.build_timm_model('swin_demo', img_size=64, num_classes=4)
    padded = peer_probe.build_timm_model('swin_demo:pad', img_size=64, num_classes=4)
    count = [sum(p.numel() for p in m.parameters()) for m in (ours, padded)]
    # Only the last stage's position-bias tables differ: 2 blocks x 8 heads x (7^2 - 3^2).
    assert count[1] - count[0] == 2 * 8 * (49 - 9)
    # The demo's 64-px crops give 16/8/4/2 px maps. MMDetection's Swin keeps window 4 and
    # shift 2 in every block (padding the 2x2 map); ':pad' does the same in timm.
    mmdet_windows = [[(b.attn.window_size, b.attn.shift_size) for b in stage.blocks]
                     for stage in theirs.stages]
    assert [[(w[0], s[0]) for w, s in stage] for stage in _windows(padded)] == mmdet_windows
    # The original rule: the last stage's 2x2 map is one window, unshifted; so is the 4x4 one.
    default = _windows(ours)
    assert default[0] == [((4, 4), (0, 0)), ((4, 4), (2, 2))]
    assert set(default[2]) == {((4, 4), (0, 0))} and set(default[3]) == {((2, 2), (0, 0))}
    with pytest.raises(ValueError, match='swin_demo:bn'):
        peer_probe.build_timm_model('swin_demo:bn')


def test_plain_segmenter_takes_swins_nhwc_maps():
    model = peer_probe.PlainSegmenter('swin_demo', num_classes=4, img_size=64).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 4, 64, 64)
