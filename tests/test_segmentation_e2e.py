"""End to end: the segmentation demo config trains, evaluates, tests with TTA, draws overlays
and trains on two gloo processes, each through the real tools on a tiny shapes set."""
import glob
import os
import os.path as osp
import pickle
import re

import pytest
from conftest import free_port, run_tool

CONFIG = 'configs/segmentation/upernet_convnext_atto_shapes.py'
NUM_TRAIN, NUM_VAL = 16, 8

pytestmark = pytest.mark.slow


def data_options(root):
    # All three splits point at the tiny set: mmseg's visualization hook asks runner.iter,
    # which builds the train loop (and its dataset) even in a test run.
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp('shapes')
    run_tool(['tools/data/make_shapes.py', '--out', str(out), '--size', '64', '--seg-train',
              str(NUM_TRAIN), '--seg-val', str(NUM_VAL), '--layouts', 'ade'], timeout=120)
    root = osp.join(str(out), 'ade')
    assert len(os.listdir(osp.join(root, 'annotations', 'validation'))) == NUM_VAL
    return root


@pytest.fixture(scope='module')
def trained(shapes, tmp_path_factory):
    """4 iterations of the demo config, validated at the end; returns (work_dir, checkpoint)."""
    work_dir = str(tmp_path_factory.mktemp('seg_train'))
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options'] +
                    data_options(shapes) + [
                        'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                        'default_hooks.checkpoint.interval=4', 'default_hooks.logger.interval=2'
                    ], timeout=300)
    log = proc.stdout + proc.stderr
    assert 'SyncBN -> BN' in log  # one process: the heads' SyncBN falls back with a note
    assert re.search(r'Iter\(val\) \[8/8\].*mIoU', log)
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)
    return work_dir, ckpt


def metrics_line(log, mode='test'):
    found = re.findall(rf'Iter\({mode}\) \[(\d+)/(\d+)\](.*)', log)
    assert found, log[-3000:]
    done, total, rest = found[-1]
    metrics = dict(re.findall(r'(\w+): ([\d.]+)', rest))
    return int(done), int(total), metrics


def test_evaluate_dump_and_show_dir(shapes, trained, tmp_path):
    _, ckpt = trained
    out = str(tmp_path / 'preds.pkl')
    show = str(tmp_path / 'overlays')
    proc = run_tool(['tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'),
                     '--out', out, '--show-dir', show, '--cfg-options'] + data_options(shapes),
                    timeout=300)
    done, total, metrics = metrics_line(proc.stdout + proc.stderr)
    assert done == total == NUM_VAL
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert 0.0 <= float(metrics[key]) <= 100.0, metrics
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == NUM_VAL  # every val image was evaluated
    overlays = glob.glob(osp.join(show, '**', '*.png'), recursive=True)
    assert len(overlays) == NUM_VAL


def test_evaluate_tta(shapes, trained, tmp_path):
    _, ckpt = trained
    proc = run_tool(['tools/test.py', CONFIG, ckpt, '--tta', '--work-dir', str(tmp_path),
                     '--cfg-options'] + data_options(shapes), timeout=300)
    done, total, metrics = metrics_line(proc.stdout + proc.stderr)
    assert done == total == NUM_VAL
    assert 0.0 <= float(metrics['mIoU']) <= 100.0


def test_dist_train_two_gloo_processes(shapes, tmp_path):
    work_dir = str(tmp_path)
    run_tool(['tools/dist_train.sh', CONFIG, '2', '--work-dir', work_dir, '--cfg-options'] +
             data_options(shapes) + [
                 'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
                 'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2'
             ], timeout=300, PORT=str(free_port()), OMP_NUM_THREADS='1')
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def test_image_demo_draws_segmentation(shapes, trained, tmp_path):
    _, ckpt = trained
    image = sorted(glob.glob(osp.join(shapes, 'images', 'validation', '*.jpg')))[0]
    out_file = str(tmp_path / 'demo.png')
    run_tool(['tools/image_demo.py', image, CONFIG, ckpt, '--out-file', out_file,
              '--device', 'cpu'], timeout=120)
    assert osp.getsize(out_file) > 0
