"""tools/analysis/reproduce.py end to end on the shapes data: a zoo of release-style checkpoints
(MMDetection 2.x / MMSegmentation 0.x layout) served by a local HTTP server, fetched through the
real download path, evaluated by tools/test.py subprocesses, gathered into the matrix."""
import csv
import json
import os.path as osp

import pytest
import torch
from checkpoint_server import CheckpointServer
from conftest import REPO, load_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import backbones  # noqa: F401
from backbones.datasets import make_shapes

DET = 'cascade_convnext_atto_shapes'
SEG = 'upernet_convnext_atto_shapes'


def release_checkpoint(config, scope, path):
    """What the official release code saved: mmcv 1.x ``meta`` (CLASSES, PALETTE, config
    text, versions), ``state_dict`` and ``optimizer``."""
    cfg = Config.fromfile(config)
    init_default_scope(scope)
    from mmengine.registry import MODELS as ROOT
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = ROOT.build(cfg.model)
    state = model.state_dict()
    meta = dict(mmcv_version='1.4.2', time='Fri Jan  7 09:05:17 2022', env_info='sys.platform: '
                'linux', config=open(config).read(), epoch=36, iter=100,
                CLASSES=('circle', 'square', 'triangle'), PALETTE=[[220, 20, 60]] * 3)
    meta['mmdet_version' if scope == 'mmdet' else 'mmseg_version'] = '2.22.0'
    optimizer = dict(state={0: dict(step=torch.tensor(100.), exp_avg=torch.zeros(3))},
                     param_groups=[dict(lr=1e-4, weight_decay=0.05, params=[0])])
    torch.save(dict(meta=meta, state_dict=state, optimizer=optimizer), path)


@pytest.mark.slow
def test_reproduce_det_and_seg_from_a_served_zoo(tmp_path, monkeypatch):
    data = tmp_path / 'shapes'
    make_shapes(str(data), seed=0, size=64, det_train=1, det_val=6, seg_train=1, seg_val=6,
                layouts=('coco', 'ade'))
    www = tmp_path / 'www'
    (www / 'coco').mkdir(parents=True)
    (www / 'ade20k').mkdir()
    release_checkpoint(osp.join(REPO, 'configs', 'detection', DET + '.py'), 'mmdet',
                       www / 'coco' / 'cascade_atto_shapes.pth')
    release_checkpoint(osp.join(REPO, 'configs', 'segmentation', SEG + '.py'), 'mmseg',
                       www / 'ade20k' / 'upernet_atto_shapes.pth')
    monkeypatch.setenv('CONVNEXT_CHECKPOINT_DIR', str(tmp_path / 'cache'))
    tool = load_tool('analysis', 'reproduce.py')
    with CheckpointServer(www) as server:
        common = dict(format='mmdet2', arch='atto', pretrain='in1k')
        zoo = dict(base_url=server.base, models={
            'cascade_atto_shapes': dict(task='detection', url=server.url(
                'coco/cascade_atto_shapes.pth'), config=DET, **common),
            'upernet_atto_shapes': dict(task='segmentation', url=server.url(
                'ade20k/upernet_atto_shapes.pth'), config=SEG, **dict(common, format='mmseg0'))})
        zoo_file = tmp_path / 'zoo.json'
        zoo_file.write_text(json.dumps(zoo))
        det_root, seg_root = f'{data}/coco/', f'{data}/ade/'
        det = tool.main(['--task', 'det', '--zoo', str(zoo_file), '--work-dir',
                         str(tmp_path / 'det'), '--cfg-options',
                         f'test_dataloader.dataset.data_root={det_root}',
                         f'test_evaluator.ann_file={det_root}annotations/instances_val.json'])
        seg = tool.main(['--task', 'seg', '--models', SEG, '--zoo', str(zoo_file),
                         '--work-dir', str(tmp_path / 'seg'), '--cfg-options',
                         f'test_dataloader.dataset.data_root={seg_root}'])
        assert server.gets == {'coco/cascade_atto_shapes.pth': 1,
                               'ade20k/upernet_atto_shapes.pth': 1}
    (row, ), (seg_row, ) = det, seg
    assert row['model'] == DET and 0 <= row['box_ap'] <= 100 and row['mask_ap'] is not None
    assert seg_row['model'] == SEG and 0 <= seg_row['miou'] <= 100
    assert 1e6 < row['params_m'] * 1e6 < 8e6
    with open(tmp_path / 'det' / 'matrix.csv') as f:
        (written, ) = list(csv.DictReader(f))
    assert written['model'] == DET and float(written['box_ap']) == pytest.approx(row['box_ap'])
    assert '| cascade_convnext_atto_shapes |' in (tmp_path / 'det' / 'matrix.md').read_text()


def test_reproduce_rejects_unknown_and_wrong_task_models(capsys):
    tool = load_tool('analysis', 'reproduce.py')
    with pytest.raises(SystemExit, match=r'\(upernet_convnext_tiny_1k_512x512\) is a segmentation'):
        tool.main(['--task', 'det', '--models', 'upernet_convnext_t'])
    with pytest.raises(SystemExit, match='closest'):
        tool.main(['--task', 'det', '--models', 'cascade_convnext_q_coco'])


def test_paper_rows_for_every_released_dense_model():
    """Every released detector/segmentor evaluates into a row that has the paper's figures."""
    from backbones.analysis.paper import paper_row
    from backbones.zoo import load_zoo
    for entry in load_zoo().select('detection') + load_zoo().select('segmentation'):
        row = paper_row(entry.config)
        assert row is not None and row['task'] == entry.task, entry.name
