"""Every detection config loads, builds its model and optimizer, and matches its paper row."""
import copy
import glob
import os.path as osp

import pytest
import torch
from conftest import REPO
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import backbones  # noqa: F401  (registers ConvNeXt, the constructor, CheckedCocoDataset)
from backbones.analysis import paper_row
from backbones.checkpoint.hub import is_fetched
from backbones.engine import fetch_pretrained
from backbones.zoo import load_zoo

CONFIG_DIR = osp.join(REPO, 'configs', 'detection')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))

# the paper's Table 3 (params come from backbones/data/paper.json, see paper_params):
# drop path, lr, layer decay, num_layers, AMP, checkpoint.
CONVNEXT_ROWS = {
    'mask_rcnn_convnext_t_coco.py': (0.4, 1e-4, 0.95, 6, True, 'convnext_tiny_1k_224.pth'),
    'cascade_convnext_t_coco.py': (0.4, 2e-4, 0.7, 6, True, 'convnext_tiny_1k_224.pth'),
    'cascade_convnext_s_coco.py': (0.6, 2e-4, 0.7, 12, True, 'convnext_small_1k_224.pth'),
    'cascade_convnext_b_coco.py': (0.7, 2e-4, 0.8, 12, True, 'convnext_base_1k_224.pth'),
    'cascade_convnext_b_in22k_coco.py': (0.6, 1e-4, 0.8, 12, True, 'convnext_base_22k_224.pth'),
    'cascade_convnext_l_in22k_coco.py': (0.7, 1e-4, 0.7, 12, False,
                                         'convnext_large_22k_224.pth'),
    'cascade_convnext_xl_in22k_coco.py': (0.8, 1e-4, 0.7, 12, False,
                                          'convnext_xlarge_22k_224.pth'),
}
# Comparison rows (approximate transcriptions of the paper, in the data file). Mask R-CNN R-50
# has no paper row: 44M is the figure usually quoted for it.
COMPARISON_ROWS = ['mask_rcnn_swin_t_coco.py', 'cascade_swin_t_coco.py', 'cascade_r50_coco.py',
                   'mask_rcnn_r50_coco.py']
NO_PAPER_ROW_PARAMS = {'mask_rcnn_r50_coco.py': 44}


def paper_params(name):
    """The paper's params (M) of a config's row (backbones/data/paper.json)."""
    if name in NO_PAPER_ROW_PARAMS:
        return NO_PAPER_ROW_PARAMS[name]
    return paper_row(name)['params'] / 1e6


DEMO_CONFIGS = ['mask_rcnn_convnext_atto_shapes.py', 'cascade_convnext_atto_shapes.py']
#: The demo's comparison rows: the ConvNeXt demo Mask R-CNN with another backbone.
DEMO_COMPARISONS = ['mask_rcnn_resnet_shapes.py', 'mask_rcnn_swin_shapes.py']


def test_every_row_has_a_config():
    assert set(CONVNEXT_ROWS) | set(COMPARISON_ROWS) | set(DEMO_CONFIGS) | set(
        DEMO_COMPARISONS) == set(CONFIGS)


@pytest.fixture(scope='module')
def built(request):
    """(name, config, model, optim_wrapper) of a config.

    Module-scoped and parametrised indirectly, so pytest runs every test of one config before
    building the next: each model (XL has 407M parameters) is built once and dropped after.
    """
    name = request.param
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(copy.deepcopy(cfg.model))
        wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
        if wrapper_cfg.type == 'AmpOptimWrapper' and not torch.cuda.is_available():
            wrapper_cfg.type = 'OptimWrapper'  # what tools/train.py does on a CPU
        optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    return name, cfg, model, optim_wrapper


def _num_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('built', CONFIGS, indirect=True)
def test_config_loads_and_builds(built):
    _, cfg, model, optim_wrapper = built
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['backbones'], allow_failed_imports=False)
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 3
    assert cfg.train_dataloader.dataset.type == 'CheckedCocoDataset'
    assert cfg.val_evaluator.type == 'CocoMetric'
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'}
    assert type(model).__name__ in ('MaskRCNN', 'CascadeRCNN')
    assert len(optim_wrapper.optimizer.param_groups) >= 1


@pytest.mark.parametrize('built', sorted(CONVNEXT_ROWS) + sorted(COMPARISON_ROWS),
                         indirect=True)
def test_coco_recipe(built):
    _, cfg, _, _ = built
    # batch 16 as 8 GPUs x 2 images, lr scaled by the real batch
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW' and optimizer.betas == (0.9, 0.999)
    assert optimizer.weight_decay == 0.05
    assert cfg.train_cfg.max_epochs == 36
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.by_epoch, warmup.end) == ('LinearLR', False, 1000)
    assert steps.type == 'MultiStepLR' and list(steps.milestones) == [27, 33]
    # DETR-style augmentation: multi-scale resize, or resize + crop + resize
    choice = [t for t in cfg.train_pipeline if t.type == 'RandomChoice'][0]
    assert [[t.type for t in branch] for branch in choice.transforms] == [
        ['RandomChoiceResize'],
        ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']]
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    with DefaultScope.overwrite_default_scope('mmdet'):  # every transform builds
        Compose(cfg.train_pipeline)
        Compose(cfg.test_pipeline)
    if cfg.model.type == 'CascadeRCNN':
        for head in cfg.model.roi_head.bbox_head:
            assert head.type == 'Shared4Conv1FCBBoxHead'
            assert head.norm_cfg.type == 'SyncBN' and head.reg_decoded_bbox
            assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)


@pytest.mark.parametrize('built', sorted(CONVNEXT_ROWS), indirect=True)
def test_convnext_row(built):
    name, cfg, model, optim_wrapper = built
    drop_path, lr, decay, num_layers, amp, ckpt = CONVNEXT_ROWS[name]
    backbone = cfg.model.backbone
    assert backbone.type == 'ConvNeXt' and backbone.drop_path_rate == drop_path
    # The released file, by its official URL (fetched into the cache on first use).
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=load_zoo().get(ckpt).url)
    assert backbone.init_cfg.checkpoint == f'https://dl.fbaipublicfiles.com/convnext/{ckpt}'
    assert cfg.optim_wrapper.type == ('AmpOptimWrapper' if amp else 'OptimWrapper')
    assert cfg.optim_wrapper.constructor == 'LayerDecayOptimizerConstructor'
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        decay_rate=decay, decay_type='layer_wise', num_layers=num_layers)
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert _num_params(model) / 1e6 == pytest.approx(paper_params(name), rel=0.02)

    # Our constructor built the groups: stem lr = head lr * decay ** (num_layers + 1).
    lr_of = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            lr_of[id(param)] = group['lr']
    named = dict(model.named_parameters())
    stem = lr_of[id(named['backbone.downsample_layers.0.0.weight'])]
    head = lr_of[id(named['rpn_head.rpn_conv.weight'])]
    assert head == pytest.approx(lr)
    assert stem / head == pytest.approx(decay**(num_layers + 1))


@pytest.mark.parametrize('built', sorted(COMPARISON_ROWS), indirect=True)
def test_comparison_row(built):
    name, cfg, model, _ = built
    assert cfg.model.backbone.type in ('SwinTransformer', 'ResNet')
    assert 'constructor' not in cfg.optim_wrapper  # no layer decay for these backbones
    assert _num_params(model) / 1e6 == pytest.approx(paper_params(name), rel=0.02)


# The ResNet-50 rows start from torchvision's weights, which MMEngine downloads itself.
DOWNLOADED = ['cascade_r50_coco.py', 'mask_rcnn_r50_coco.py']


@pytest.mark.parametrize('name', DOWNLOADED)
def test_r50_rows_use_torchvision_weights(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet50'


@pytest.mark.parametrize(
    'name', sorted(set(CONFIGS) - set(DEMO_CONFIGS) - set(DEMO_COMPARISONS) - set(DOWNLOADED)))
def test_missing_pretrained_names_the_file(name, tmp_path):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    ckpt = cfg.model.backbone.init_cfg.checkpoint
    assert is_fetched(ckpt)  # a URL: a local path of that file name must exist
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / osp.basename(ckpt))
    with pytest.raises(FileNotFoundError, match=osp.basename(ckpt)):
        fetch_pretrained(cfg)


@pytest.mark.parametrize('built', DEMO_CONFIGS, indirect=True)
def test_demo_config_is_slim_and_standalone(built):
    _, cfg, model, _ = built
    assert cfg.model.backbone.arch == 'atto' and cfg.model.backbone.init_cfg is None
    assert cfg.model.neck.out_channels == 64
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.train_dataloader.dataset.data_root == 'data/shapes/coco/'
    assert cfg.train_dataloader.dataset.metainfo.classes == ('circle', 'square', 'triangle')
    # Mask R-CNN samples 64 RoIs; Cascade 32 per stage (three heads, the demo's time budget).
    rcnn = cfg.model.train_cfg.rcnn
    if isinstance(rcnn, list):
        assert [stage.sampler.num for stage in rcnn] == [32, 32, 32]
        # Every stage has the Mask R-CNN demo's box head; the deltas and GIoU stay the paper's.
        mask_rcnn = Config.fromfile(osp.join(CONFIG_DIR, DEMO_CONFIGS[0])).model.roi_head
        heads = cfg.model.roi_head.bbox_head
        assert {h.type for h in heads} == {mask_rcnn.bbox_head.type} == {'Shared2FCBBoxHead'}
        assert {h.fc_out_channels for h in heads} == {mask_rcnn.bbox_head.fc_out_channels}
        assert [h.bbox_coder.target_stds[0] for h in heads] == [0.1, 0.05, 0.033]
        assert all(h.loss_bbox.type == 'GIoULoss' and h.reg_decoded_bbox for h in heads)
    else:
        assert rcnn.sampler.num == 64
    assert cfg.model.roi_head.mask_head.num_convs == 2
    assert _num_params(model) < 8e6
    fetch_pretrained(cfg)  # nothing to download or find


@pytest.mark.parametrize('name', DEMO_COMPARISONS)
def test_demo_comparisons_share_the_recipe(name):
    """Same data, schedule, optimizer and heads as the ConvNeXt demo; only the backbone (and
    the neck's input widths, Swin's weight-decay exemptions) differ."""
    ours = Config.fromfile(osp.join(CONFIG_DIR, DEMO_CONFIGS[0]))
    other = Config.fromfile(osp.join(CONFIG_DIR, name))
    for key in ('train_dataloader', 'val_dataloader', 'train_cfg', 'param_scheduler',
                'auto_scale_lr', 'randomness'):
        assert other.get(key) == ours.get(key), key
    assert other.optim_wrapper.optimizer == ours.optim_wrapper.optimizer
    for key in ('rpn_head', 'roi_head', 'train_cfg', 'test_cfg'):
        assert other.model[key] == ours.model[key], key
    neck_ours, neck_other = dict(ours.model.neck), dict(other.model.neck)
    neck_ours.pop('in_channels'), neck_other.pop('in_channels')
    assert neck_ours == neck_other
    assert other.model.backbone.type != 'ConvNeXt' and other.model.backbone.init_cfg is None
