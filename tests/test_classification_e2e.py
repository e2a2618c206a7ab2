"""Pre-train on the synthetic ImageFolder with tools/train.py, then hand the checkpoint to the
detection and segmentation demo configs (real runs, real files)."""
import json
import math
import os.path as osp
import pickle

import pytest
import timm
import torch
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

import backbones  # noqa: F401
from backbones.datasets import ImageFolderDataset
from backbones.engine import load_checkpoint_file, read_last_checkpoint
from backbones.models import convert_checkpoint, convert_to_official, load_pretrained

CLS_CONFIG = 'configs/classification/convnext_atto_shapes.py'
DOWNSTREAM = {
    'mmdet': 'configs/detection/mask_rcnn_convnext_atto_shapes.py',
    'mmseg': 'configs/segmentation/upernet_convnext_atto_shapes.py',
}


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """The demo pre-training as `make demo` runs it (the config unchanged, the data tool's
    default shapes ImageFolder); returns its work dir."""
    root = tmp_path_factory.mktemp('cls_chain')
    data = root / 'shapes'
    run_tool(['tools/data/make_shapes.py', '--out', str(data), '--layouts', 'cls'])
    work = root / 'work'
    run_tool(['tools/train.py', CLS_CONFIG, '--work-dir', str(work), '--cfg-options',
              f'train_dataloader.dataset.data_root={data}/cls',
              f'val_dataloader.dataset.data_root={data}/cls'], timeout=900)
    return work


def _val_records(work):
    logs = sorted(work.glob('*/vis_data/scalars.json'))
    assert logs, f'no scalars.json written under {work}'
    records = [json.loads(line) for line in logs[-1].read_text().splitlines()]
    return [r for r in records if 'accuracy/top1' in r]


def _last_checkpoint(work):
    checkpoint = read_last_checkpoint(str(work))
    assert checkpoint is not None, f'no last_checkpoint under {work}'
    return checkpoint


@pytest.mark.slow
def test_pretraining_logs_raw_and_ema_accuracy(pretrained):
    val = _val_records(pretrained)
    assert val and 'ema/accuracy/top1' in val[-1]
    last = _last_checkpoint(pretrained)
    max_epochs = Config.fromfile(osp.join(REPO, CLS_CONFIG)).max_epochs
    assert osp.basename(last) == f'epoch_{max_epochs}.pth'  # the run finished
    checkpoint = load_checkpoint_file(last)
    assert set(checkpoint['state_dict_ema']) == set(checkpoint['state_dict'])
    # The EMA lags the raw weights: the two differ.
    key = 'backbone.stages.0.0.pwconv1.weight'
    assert not torch.equal(checkpoint['state_dict_ema'][key], checkpoint['state_dict'][key])


@pytest.mark.slow
def test_demo_pretraining_beats_chance(pretrained):
    val = ImageFolderDataset(data_root=str(pretrained.parent / 'shapes' / 'cls'), split='val')
    val_images = len(val)
    # Chance is the share of the most frequent class (the crops are not balanced: one
    # background crop per scene beside one per shape). A classifier at chance stays below
    # chance + 4 binomial standard deviations with p > 0.9999.
    labels = [label for _, label in val.samples]
    share = max(labels.count(c) for c in set(labels)) / val_images
    chance = 100 * share
    sigma = 100 * math.sqrt(share * (1 - share) / val_images)
    final = _val_records(pretrained)[-1]
    for key in ('accuracy/top1', 'ema/accuracy/top1'):
        assert final[key] > chance + 4 * sigma, (
            f'{key} = {final[key]:.1f}% after the demo pre-training; chance is {chance:.1f}%, '
            f'the bar {chance + 4 * sigma:.1f}% ({val_images} val images)')


@pytest.mark.slow
@pytest.mark.parametrize('scope', sorted(DOWNSTREAM))
@pytest.mark.parametrize('use_ema', [False, True], ids=['raw', 'ema'])
def test_checkpoint_initialises_downstream_backbones(pretrained, scope, use_ema):
    ckpt = _last_checkpoint(pretrained)
    weights = load_checkpoint_file(ckpt)['state_dict_ema' if use_ema else 'state_dict']

    # The classifier as it was trained (raw or EMA weights).
    cls_cfg = Config.fromfile(osp.join(REPO, CLS_CONFIG))
    classifier = ROOT_MODELS.build(cls_cfg.model).eval()
    classifier.load_state_dict(weights, strict=True)

    cfg = Config.fromfile(osp.join(REPO, DOWNSTREAM[scope]))
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=ckpt, use_ema=use_ema)
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.eval()
        # Every backbone key comes from the checkpoint: nothing missing, nothing left over.
        missing, unexpected = load_pretrained(model.backbone, ckpt, use_ema=use_ema)
    assert missing == [] and unexpected == []
    backbone_state = model.backbone.state_dict()
    for key, value in backbone_state.items():
        assert torch.equal(value, weights['backbone.' + key]), key

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = model.backbone(x)
        reference = classifier.backbone(x)
    assert len(ours) == len(reference) == 4
    for a, b in zip(ours, reference):
        assert torch.equal(a, b)


@pytest.fixture(scope='module')
def val_folder(tmp_path_factory):
    data = tmp_path_factory.mktemp('cls_val') / 'shapes'
    run_tool(['tools/data/make_shapes.py', '--out', str(data), '--layouts', 'cls',
              '--cls-train', '3', '--cls-val', '12', '--size', '64'])
    return data / 'cls'


@pytest.mark.parametrize('fmt', ['timm', 'official'])
def test_foreign_imagenet_checkpoints_evaluate_with_test_tool(tmp_path, val_folder, fmt):
    torch.manual_seed(0)
    reference = timm.create_model('convnext_atto', num_classes=4).eval()
    with torch.no_grad():  # break the symmetric init so predictions depend on every weight
        for name, p in reference.named_parameters():
            if name.endswith('gamma') or 'norm' in name:
                p.normal_(1.0 if name.endswith('weight') else 0.0, 0.3)
    state = reference.state_dict()
    if fmt == 'official':
        backbone = convert_to_official(convert_checkpoint(state))
        backbone.update({'norm.weight': state['head.norm.weight'],
                         'norm.bias': state['head.norm.bias'],
                         'head.weight': state['head.fc.weight'],
                         'head.bias': state['head.fc.bias']})
        state = {'model': backbone}
    ckpt = tmp_path / f'{fmt}.pth'
    torch.save(state, ckpt)

    out = tmp_path / 'preds.pkl'
    proc = run_tool(['tools/test.py', CLS_CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'w'),
                     '--out', str(out), '--cfg-options',
                     f'test_dataloader.dataset.data_root={val_folder}',
                     'test_dataloader.dataset.transform.input_size=64'])
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        predictions = pickle.load(f)

    dataset = ImageFolderDataset(str(val_folder), 'val',
                                 dict(input_size=64, is_training=False, crop_pct=1.0,
                                      interpolation='bicubic'))
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        expected = reference(batch['inputs']).softmax(1)
    scores = torch.stack([p['pred_score'] for p in predictions])
    assert scores.shape == expected.shape == (12, 4)
    assert torch.allclose(scores, expected, atol=1e-4)
    assert [p['gt_label'] for p in predictions] == batch['data_samples'].tolist()
