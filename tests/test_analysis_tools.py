"""tools/analysis: get_flops.py, paper_check.py and matrix.py, and the paper data file they
share (backbones/data/paper.json). Real tool processes and real short training runs."""
import csv
import glob
import json
import os.path as osp

import pytest
import torch
from conftest import TEST_DATA, run_tool
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

import backbones
from backbones.analysis import (CONVNEXT_PAPER_COMPLEXITY, ISOTROPIC_PAPER_COMPLEXITY,
                                ROADMAP_PAPER_GFLOPS, ROADMAP_PAPER_KERNEL_GFLOPS, load_paper,
                                paper_row)
from backbones.analysis.complexity import build_model, default_shape
from backbones.datasets import make_shapes

ENV = dict(OMP_NUM_THREADS='1')
DET_DEMO = 'configs/detection/mask_rcnn_convnext_atto_shapes.py'
SEG_DEMO = 'configs/segmentation/upernet_convnext_atto_shapes.py'

# A small ConvNeXt classifier in the classification configs' interface.
TINY_CLASSIFIER = """
default_scope = 'mmengine'
custom_imports = dict(imports=['backbones'], allow_failed_imports=False)
model = dict(type='ImageClassifier',
             backbone=dict(type='ConvNeXt', arch=dict(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32))),
             head=dict(num_classes=10))
"""

# A top-k metric with MMEngine's classification keys, for a toy run that logs 'accuracy/top1'.
TOP1_MODULE = """
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class ToyTop1(BaseMetric):
    default_prefix = 'accuracy'

    def process(self, data_batch, data_samples):
        self.results.extend(int(s['pred']) == int(s['label']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(top1=100. * sum(results) / len(results))
"""


def _flops(model, shape):
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, *shape), ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analyzer.total())


# --------------------------------------------------------------------------------------------
# The data file


def test_constants_come_from_the_data_file():
    paper = load_paper()
    assert CONVNEXT_PAPER_COMPLEXITY == {
        a: (r['params_m'], r['gflops']) for a, r in paper['backbones'].items()}
    assert ISOTROPIC_PAPER_COMPLEXITY == {
        a: (r['params_m'], r['gflops']) for a, r in paper['isotropic'].items()}
    assert ROADMAP_PAPER_GFLOPS == {s: r['gflops'] for s, r in paper['roadmap']['steps'].items()}
    assert ROADMAP_PAPER_KERNEL_GFLOPS == {
        int(k): r['gflops'] for k, r in paper['roadmap']['kernel_variants'].items()}
    assert list(ROADMAP_PAPER_GFLOPS) == list(backbones.ROADMAP_STEPS)
    # Config stems map to their rows; the demo configs have none.
    row = paper_row('configs/detection/cascade_convnext_t_coco.py')
    assert row['task'] == 'detection' and row['flops_shape'] == (800, 1280)
    figures = (row['box_ap'], row['mask_ap'], row['params'], row['flops'])
    assert figures == (50.4, 43.7, 86e6, 741e9)
    assert paper_row('upernet_convnext_xl_in22k_ade20k_640')['flops_shape'] == (640, 2560)
    assert paper_row('convnext_b_in22k_ft_in1k')['top1'] == 85.8
    assert paper_row('mask_rcnn_convnext_atto_shapes') is None
    # Every paper row of a dense task has its config in the repo.
    for section, folder in (('coco', 'detection'), ('ade20k', 'segmentation')):
        for stem in paper[section]:
            if not stem.startswith('_') and isinstance(paper[section][stem], dict):
                assert osp.isfile(osp.join('configs', folder, f'{stem}.py')), stem


def test_data_file_ships_inside_the_package():
    assert osp.isfile(osp.join(osp.dirname(backbones.__file__), 'data', 'paper.json'))


def test_bad_data_file_is_named(tmp_path):
    bad = tmp_path / 'paper.json'
    bad.write_text('{"tolerance": {}}')
    with pytest.raises(KeyError, match=r'paper.json.*backbones'):
        load_paper(str(bad))
    bad.write_text('{oops')
    with pytest.raises(ValueError, match='paper.json.*not valid JSON'):
        load_paper(str(bad))


# --------------------------------------------------------------------------------------------
# get_flops.py


def test_get_flops_classifier_json(tmp_path):
    config = tmp_path / 'tiny_classifier.py'
    config.write_text(TINY_CLASSIFIER)
    proc = run_tool(['tools/analysis/get_flops.py', str(config), '--shape', '64', '96',
                     '--json'], **ENV)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Independently: the same model, its logits forward, counted directly.
    model = build_model(Config.fromfile(str(config)))
    logits = model(torch.zeros(1, 3, 64, 96), mode='tensor')
    assert logits.shape == (1, 10)

    class Logits(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, mode='tensor')

    assert out['params'] == sum(p.numel() for p in model.parameters())
    assert out['flops'] == _flops(Logits(), (64, 96)) > 0
    assert (out['task'], out['shape']) == ('classification', [64, 96])
    # Without --shape: 224x224, the paper's classification resolution.
    assert default_shape(Config.fromfile(str(config))) == (224, 224)


def test_get_flops_detector_and_segmentor():
    det = json.loads(run_tool(['tools/analysis/get_flops.py', DET_DEMO, '--shape', '128',
                               '128', '--json'], **ENV).stdout.strip().splitlines()[-1])
    cfg = Config.fromfile(DET_DEMO)
    model = build_model(cfg)
    assert det['task'] == 'detection'
    assert det['params'] == sum(p.numel() for p in model.parameters())
    # Backbone + neck alone are a part of the count: the heads add to it.
    assert det['flops'] > _flops(torch.nn.Sequential(model.backbone), (128, 128)) > 0
    seg = run_tool(['tools/analysis/get_flops.py', SEG_DEMO, '--shape', '128', '128'], **ENV)
    assert 'segmentation' in seg.stdout and 'FLOPs:' in seg.stdout and 'params:' in seg.stdout


def test_get_flops_missing_config_is_named():
    proc = run_tool(['tools/analysis/get_flops.py', 'configs/nope.py', '--json'], check=False)
    assert proc.returncode != 0 and 'configs/nope.py' in proc.stderr


# --------------------------------------------------------------------------------------------
# paper_check.py

# What the issue asks to pass: backbones T/S/B/L/XL, every detection and segmentation row
# (params), UperNet-T FLOPs and the roadmap steps.
CHECKED = ['backbone/tiny', 'backbone/small', 'backbone/base', 'backbone/large',
           'backbone/xlarge', 'roadmap/*', 'coco/*', 'ade20k/*']
FLOPS = ['backbone/*', 'roadmap/*', 'ade20k/upernet_convnext_t_ade20k']


@pytest.mark.slow
def test_paper_check_passes():
    proc = run_tool(['tools/analysis/paper_check.py', '--only', *CHECKED, '--flops-only', *FLOPS],
                    timeout=600, **ENV)
    out = proc.stdout
    paper = load_paper()
    lines = {line.split('|')[1].strip(): line for line in out.splitlines()
             if line.startswith('| ') and not line.startswith('| row')}
    expected = ([f'backbone/{a}' for a in ('tiny', 'small', 'base', 'large', 'xlarge')] +
                [f'roadmap/{s}' for s in paper['roadmap']['steps']] +
                [f'roadmap/kernel_{k}' for k in (5, 9, 11)] +
                [f'coco/{s}' for s in paper['coco'] if not s.startswith('_') and
                 isinstance(paper['coco'][s], dict)] +
                [f'ade20k/{s}' for s in paper['ade20k'] if not s.startswith('_')])
    assert sorted(lines) == sorted(expected)
    for name, line in lines.items():
        assert line.split('|')[4].strip() == 'ok', line
    # FLOPs were counted where asked: a GFLOPs cell "ours / paper (diff)".
    assert '/ 939 (' in lines['ade20k/upernet_convnext_t_ade20k']
    assert '/ 60.9 (' in lines['backbone/xlarge']
    n_flops = 5 + len(paper['roadmap']['steps']) + 3 + 1
    assert f'checks run: {5 + 10 + 7} params, {n_flops} FLOPs' in out
    assert 'FLOPs not counted' in out and 'coco/cascade_convnext_xl_in22k_coco' in out
    assert 'all checks within tolerance' in out


def test_paper_check_fails_on_a_wrong_figure(tmp_path):
    paper = load_paper()
    paper['backbones']['tiny']['params_m'] = 31.0  # ours: 28.6M, 7.8% off
    paper['coco']['mask_rcnn_convnext_t_coco']['params_m'] = 47.5  # 1.3% off: within 2%
    path = tmp_path / 'paper.json'
    path.write_text(json.dumps(paper))
    proc = run_tool(['tools/analysis/paper_check.py', '--paper', str(path), '--skip-flops',
                     '--only', 'backbone/tiny', 'coco/mask_rcnn_convnext_t_coco'], check=False,
                    **ENV)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'FAILED: backbone/tiny (params)' in proc.stdout
    assert 'mask_rcnn_convnext_t_coco' not in proc.stdout.split('FAILED:')[1]
    assert 'checks run: 2 params, 0 FLOPs' in proc.stdout


# --------------------------------------------------------------------------------------------
# matrix.py


def _logged(work_dir):
    """The last evaluation row and the summed training time, read straight from the logs."""
    evals, train = [], []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for row in map(json.loads, f):
                (train if 'loss' in row else evals).append(row)
    seconds, prev = 0., 0
    for row in train:
        seconds += row['time'] * (row['iter'] - prev)
        prev = row['iter']
    return evals[-1], seconds


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Three real short runs: toy classifier (top-1), Mask R-CNN and UperNet on tiny shapes."""
    root = tmp_path_factory.mktemp('matrix')
    (root / 'toy_top1.py').write_text(TOP1_MODULE)
    toy = root / 'toy_cls.py'
    toy.write_text(f"_base_ = ['{osp.join(TEST_DATA, 'configs', 'toy_classifier.py')}']\n"
                   "custom_imports = dict(imports=['backbones', 'toy_modules', 'toy_top1'])\n"
                   "val_evaluator = dict(type='ToyTop1')\ntest_evaluator = val_evaluator\n")
    data = str(root / 'shapes')
    make_shapes(data, seed=0, size=64, det_train=8, det_val=4, seg_train=8, seg_val=4,
                layouts=('coco', 'ade'))
    coco, ade = osp.join(data, 'coco') + '/', osp.join(data, 'ade') + '/'
    pythonpath = f'{root}'
    dirs = {}
    dirs['cls'] = str(root / 'cls')
    run_tool(['tools/train.py', str(toy), '--work-dir', dirs['cls']],
             PYTHONPATH=pythonpath + ':' + TEST_DATA, **ENV)
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2']
    dirs['det'] = str(root / 'det')
    run_tool(['tools/train.py', DET_DEMO, '--work-dir', dirs['det'], '--cfg-options', *short] +
             [f'{s}_dataloader.dataset.data_root={coco}' for s in ('train', 'val', 'test')] +
             [f'{s}_evaluator.ann_file={coco}annotations/instances_val.json'
              for s in ('val', 'test')], timeout=300, **ENV)
    dirs['seg'] = str(root / 'seg')
    run_tool(['tools/train.py', SEG_DEMO, '--work-dir', dirs['seg'], '--cfg-options', *short] +
             [f'{s}_dataloader.dataset.data_root={ade}' for s in ('train', 'val', 'test')],
             timeout=300, **ENV)
    return root, dirs


@pytest.mark.slow
def test_matrix_table_from_real_runs(runs):
    root, dirs = runs
    md, csv_path, png = root / 'm.md', root / 'm.csv', root / 'm.png'
    proc = run_tool(['tools/analysis/matrix.py', dirs['cls'], dirs['det'], dirs['seg'],
                     '--shape', '64', '64', '--out-md', str(md), '--out-csv', str(csv_path),
                     '--out-png', str(png)], PYTHONPATH=f'{root}:{TEST_DATA}', **ENV)
    with open(csv_path) as f:
        rows = {r['model']: r for r in csv.DictReader(f)}
    assert list(rows) == ['toy_cls', 'mask_rcnn_convnext_atto_shapes',
                          'upernet_convnext_atto_shapes']
    expected = {
        'toy_cls': dict(top1=('accuracy/top1', 1)),
        'mask_rcnn_convnext_atto_shapes': dict(box_ap=('coco/bbox_mAP', 100),
                                               mask_ap=('coco/segm_mAP', 100)),
        'upernet_convnext_atto_shapes': dict(miou=('mIoU', 1)),
    }
    for (name, metrics), work_dir in zip(expected.items(), dirs.values()):
        last, seconds = _logged(work_dir)
        row = rows[name]
        for column, (key, scale) in metrics.items():
            assert float(row[column]) == pytest.approx(last[key] * scale), (name, column)
        for column in {'top1', 'box_ap', 'mask_ap', 'miou'} - set(metrics):
            assert row[column] == '', (name, column)
        assert float(row['train_time_s']) == pytest.approx(seconds) and seconds > 0
        assert float(row['params_m']) > 0 and float(row['gflops']) > 0
    # The detector's params: the config's model, counted independently.
    model = build_model(Config.fromfile(DET_DEMO))
    assert float(rows['mask_rcnn_convnext_atto_shapes']['params_m']) == pytest.approx(
        sum(p.numel() for p in model.parameters()) / 1e6)
    text = md.read_text()
    assert text == proc.stdout
    assert text.splitlines()[0].startswith('| model | params (M) | GFLOPs | top-1 | box AP')
    assert len(text.splitlines()) == 2 + 3
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_matrix_paper_columns_and_errors(runs, tmp_path):
    root, dirs = runs
    # A run of a paper config shows the paper's figures and the difference: the real config
    # name on the toy run's logs (complexity off: the name is what maps to the paper row).
    import shutil
    work = tmp_path / 'upernet'
    shutil.copytree(dirs['seg'], work)
    for path in glob.glob(str(work / '*.py')):
        shutil.move(path, str(work / 'upernet_convnext_t_ade20k.py'))
    out = tmp_path / 'paper.csv'
    proc = run_tool(['tools/analysis/matrix.py', str(work), '--no-complexity', '--out-csv',
                     str(out)], **ENV)
    with open(out) as f:
        row = next(csv.DictReader(f))
    last, _ = _logged(str(work))
    assert float(row['miou_paper']) == 46.0
    assert float(row['miou_diff']) == pytest.approx(last['mIoU'] - 46.0)
    assert float(row['params_m_paper']) == 60 and row['params_m'] == ''
    assert '(paper 46.0, ' in proc.stdout
    # A folder without logs: the error names it.
    empty = tmp_path / 'empty'
    empty.mkdir()
    proc = run_tool(['tools/analysis/matrix.py', str(empty)], check=False)
    assert proc.returncode != 0 and str(empty) in proc.stderr and 'scalars.json' in proc.stderr
