"""Detection end to end on the synthetic shapes: train, evaluate with pycocotools, draw, and
fail clearly on missing files. Real tool processes, CPU only, a few minutes in all.

The "training helps" check uses the slim shapes Mask R-CNN with a ResNet-18 backbone
(tests/data/configs/mask_rcnn_r18_shapes.py), which leaves 0 bbox mAP within ~100 iterations
(~0.04 after 120). ConvNeXt-atto learns this task too now (14.4 box AP after the demo's 300
iterations), but more slowly in its first hundred; its demo config is exercised by the
distributed run, and tests/test_peer_equivalence.py holds its detections to MMDetection's own.
"""
import glob
import importlib.util
import json
import os.path as osp

import cv2
import mmengine
import numpy as np
import pytest
import torch
from conftest import REPO, TEST_DATA, free_port, run_tool
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

import backbones  # noqa: F401
from backbones.datasets import make_shapes

DEMO = 'configs/detection/mask_rcnn_convnext_atto_shapes.py'
R18 = osp.join(TEST_DATA, 'configs', 'mask_rcnn_r18_shapes.py')
NUM_VAL = 30
# One thread per process: on 2 shared cores, 2 OpenMP threads per process run several times
# slower than 1 when other processes compete for the cores.
ENV = dict(OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    make_shapes(root, seed=0, det_train=240, det_val=NUM_VAL, layouts=('coco', ))
    return osp.join(root, 'coco') + '/'


def data_options(root, splits=('train', 'val', 'test')):
    """--cfg-options that point a shapes config at another COCO-layout root."""
    opts = [f'{split}_dataloader.dataset.data_root={root}' for split in splits]
    for split in ('val', 'test'):
        if split in splits:
            opts.append(f'{split}_evaluator.ann_file={root}annotations/instances_val.json')
    return opts


def read_metrics(work_dir):
    """The metric dict MMEngine writes after a test run (WORK_DIR/TIMESTAMP/TIMESTAMP.json)."""
    files = sorted(glob.glob(osp.join(work_dir, '2*', '2*.json')))
    assert files, f'no metrics json under {work_dir}'
    with open(files[-1]) as f:
        return json.load(f)


def save_untrained(path):
    """An iteration-0 checkpoint of the R-18 test model (seeded init, no training)."""
    cfg = Config.fromfile(R18)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(cfg.test_dataloader.dataset.metainfo))), path)


def evaluate(checkpoint, work_dir, shapes, *extra):
    proc = run_tool(['tools/test.py', R18, checkpoint, '--work-dir', work_dir, *extra,
                     '--cfg-options', *data_options(shapes, ('test', ))], **ENV)
    return read_metrics(work_dir), proc


@pytest.mark.slow
def test_train_evaluate_and_draw(shapes, tmp_path):
    untrained = str(tmp_path / 'untrained.pth')
    save_untrained(untrained)
    train_dir = str(tmp_path / 'train')
    # The val split is only built (Runner.train builds every loop), never evaluated here.
    run_tool(['tools/train.py', R18, '--work-dir', train_dir, '--cfg-options',
              *data_options(shapes, ('train', 'val'))], **ENV)
    trained = osp.join(train_dir, 'iter_120.pth')
    assert osp.isfile(trained)

    out = str(tmp_path / 'preds.pkl')
    metrics, proc = evaluate(trained, str(tmp_path / 'test'), shapes, '--out', out,
                             '--show-dir', 'vis')
    # pycocotools' COCOeval produced the numbers (its summary table and MMDetection's keys).
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]' in proc.stdout
    for task in ('bbox', 'segm'):
        for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
            value = metrics[f'coco/{task}_{key}']
            assert isinstance(value, float) and -1 <= value <= 1
    # Every val image was predicted and evaluated, and drawn by --show-dir.
    predictions = mmengine.load(out)
    assert sorted(p['img_id'] for p in predictions) == list(range(1, NUM_VAL + 1))
    assert len(glob.glob(osp.join(tmp_path, 'test', '2*', 'vis', '*.png'))) == NUM_VAL

    base, _ = evaluate(untrained, str(tmp_path / 'test0'), shapes)
    print(f'untrained {base}\ntrained {metrics}')
    assert metrics['coco/bbox_mAP'] >= base['coco/bbox_mAP'] + 0.01
    assert metrics['coco/segm_mAP'] >= base['coco/segm_mAP'] + 0.01

    image = osp.join(shapes, 'val', '000000.png')
    drawn = str(tmp_path / 'demo' / 'drawn.png')
    proc = run_tool(['tools/image_demo.py', image, R18, trained, '--out-file', drawn,
                     '--score-thr', '0.05', '--device', 'cpu'], **ENV)
    assert int(proc.stdout.split(' instances')[0].split()[-1]) >= 1
    result = cv2.imread(drawn)
    assert result.shape == (128, 128, 3)
    assert np.abs(result.astype(int) - cv2.imread(image).astype(int)).sum() > 0


@pytest.mark.slow
def test_dist_train_two_cpu_processes(shapes, tmp_path):
    work = str(tmp_path / 'dist')
    run_tool(['tools/dist_train.sh', DEMO, '2', '--work-dir', work, '--cfg-options',
              *data_options(shapes, ('train', )), 'train_cfg.max_iters=2',
              'train_dataloader.batch_size=2', 'param_scheduler.0.end=1',
              'param_scheduler.1.begin=1', 'param_scheduler.1.end=2',
              'default_hooks.checkpoint.interval=2', 'val_dataloader=None', 'val_cfg=None',
              'val_evaluator=None'],
             # the CPU path (gloo) even on a machine with one GPU
             PORT=str(free_port()), CUDA_VISIBLE_DEVICES='', **ENV)
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    with open(glob.glob(osp.join(work, '2*', '2*.log'))[0]) as f:
        log = f.read()
    assert 'Distributed training: True' in log
    assert "backend='gloo'" in log


@pytest.mark.slow
@pytest.mark.parametrize('case', ['pretrained', 'annotation', 'data_root'])
def test_missing_file_stops_with_its_path(case, shapes, tmp_path):
    if case == 'pretrained':
        missing = str(tmp_path / 'convnext_tiny_1k_224.pth')
        args = ['configs/detection/mask_rcnn_convnext_t_coco.py', '--cfg-options',
                f'model.backbone.init_cfg.checkpoint={missing}']
        expected = 'pretrained checkpoint not found'
    elif case == 'annotation':
        missing = osp.join(shapes, 'annotations', 'instances_missing.json')
        args = [DEMO, '--cfg-options', *data_options(shapes),
                'train_dataloader.dataset.ann_file=annotations/instances_missing.json']
        expected = 'annotation file not found'
    else:
        missing = str(tmp_path / 'no_such_root') + '/'
        args = [DEMO, '--cfg-options', *data_options(missing)]
        expected = 'dataset root not found'
    proc = run_tool(['tools/train.py', *args, '--work-dir', str(tmp_path / 'w')], check=False,
                    **ENV)
    assert proc.returncode != 0
    assert 'FileNotFoundError' in proc.stderr and expected in proc.stderr
    assert missing in proc.stderr


def test_image_demo_unknown_scope_not_implemented(tmp_path):
    spec = importlib.util.spec_from_file_location('image_demo',
                                                  osp.join(REPO, 'tools', 'image_demo.py'))
    image_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(image_demo)
    config = tmp_path / 'future.py'
    config.write_text("default_scope = 'mmfuture'\nmodel = dict(type='Anything')\n")
    image = str(tmp_path / 'x.png')
    cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(NotImplementedError, match="'mmfuture'"):
        image_demo.main([image, str(config), 'none.pth', '--out-file', str(tmp_path / 'o.png')])
