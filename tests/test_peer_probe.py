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
