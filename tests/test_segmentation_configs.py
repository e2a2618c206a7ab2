"""Every segmentation config loads, builds, and matches the paper's recipe and model size."""
import glob
import os.path as osp

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import backbones  # noqa: F401
from backbones.analysis import paper_row
from backbones.zoo import load_zoo

CONFIG_DIR = osp.join(REPO, 'configs', 'segmentation')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))

# the paper's Table 4 (params and GFLOPs come from backbones/data/paper.json): lr, drop path,
# num_layers, AMP, crop, checkpoint.
PAPER = {
    'upernet_convnext_t_ade20k.py': (1e-4, 0.4, 6, True, 512, 'convnext_tiny_1k_224.pth'),
    'upernet_convnext_s_ade20k.py': (1e-4, 0.3, 12, True, 512, 'convnext_small_1k_224.pth'),
    'upernet_convnext_b_ade20k.py': (1e-4, 0.4, 12, True, 512, 'convnext_base_1k_224.pth'),
    'upernet_convnext_b_in22k_ade20k_640.py': (1e-4, 0.4, 12, True, 640,
                                               'convnext_base_22k_224.pth'),
    'upernet_convnext_l_in22k_ade20k_640.py': (1e-4, 0.4, 12, False, 640,
                                               'convnext_large_22k_224.pth'),
    'upernet_convnext_xl_in22k_ade20k_640.py': (8e-5, 0.4, 12, False, 640,
                                                'convnext_xlarge_22k_224.pth'),
}
SWIN = 'upernet_swin_t_ade20k.py'
DEMO = 'upernet_convnext_atto_shapes.py'
#: The demo's comparison rows: DEMO with another backbone of similar cost.
DEMO_COMPARISONS = ('upernet_resnet_shapes.py', 'upernet_swin_shapes.py')


def load(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    init_default_scope('mmseg')
    return cfg


def build_model(cfg, device='meta'):
    """Build the segmentor; on the meta device (no memory, no init) unless asked otherwise."""
    from mmseg.registry import MODELS
    with torch.device(device):
        return MODELS.build(cfg.model)


def test_every_row_has_a_config():
    assert set(PAPER) | {SWIN, DEMO} | set(DEMO_COMPARISONS) == set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_common_settings(name):
    cfg = load(name)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['backbones'], allow_failed_imports=False)
    assert cfg.default_hooks.checkpoint.max_keep_ckpts >= 1
    assert cfg.auto_scale_lr.enable
    assert cfg.model.decode_head.type == 'UPerHead'
    assert cfg.model.auxiliary_head.type == 'FCNHead'
    assert cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert cfg.model.test_cfg.mode == 'slide'
    assert cfg.tta_model.type == 'SegTTAModel'
    ratios = [t.scale_factor for t in cfg.tta_pipeline[1].transforms[0]]
    assert ratios == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    if name == DEMO or name in DEMO_COMPARISONS:
        return
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-6, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 1.0, 0.0, 160000)


@pytest.mark.parametrize('name', sorted(PAPER))
def test_paper_row_recipe(name):
    lr, drop_path, num_layers, amp, crop, ckpt = PAPER[name]
    cfg = load(name)
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=load_zoo().get(ckpt).url)
    wrapper = cfg.optim_wrapper
    assert wrapper.type == ('AmpOptimWrapper' if amp else 'OptimWrapper')
    assert wrapper.constructor == 'LayerDecayOptimizerConstructor'
    assert wrapper.paramwise_cfg == dict(decay_rate=0.9, decay_type='stage_wise',
                                         num_layers=num_layers)
    assert wrapper.optimizer.type == 'AdamW'
    assert (wrapper.optimizer.lr, wrapper.optimizer.weight_decay) == (lr, 0.05)
    assert tuple(wrapper.optimizer.betas) == (0.9, 0.999)
    assert tuple(cfg.model.test_cfg.crop_size) == (crop, crop)
    assert tuple(cfg.model.test_cfg.stride) == ((341, 341) if crop == 512 else (426, 426))
    assert tuple(cfg.model.data_preprocessor.size) == (crop, crop)


@pytest.mark.parametrize('name', sorted(PAPER) + [SWIN])
def test_params_match_paper(name):
    cfg = load(name)
    # Swin's constructor calls .item() on a tensor, which the meta device cannot do.
    model = build_model(cfg, 'cpu' if name == SWIN else 'meta')
    count = sum(p.numel() for p in model.parameters()) / 1e6
    expected = paper_row(name)['params'] / 1e6
    assert abs(count - expected) / expected < 0.02, f'{name}: {count:.2f}M vs {expected}M'


@pytest.mark.parametrize('name', sorted(PAPER) + [DEMO])
def test_optimizer_stage_wise_decay(name):
    """Our constructor is the one reached in mmseg's scope (mmseg has one of the same name)."""
    cfg = load(name)
    model = build_model(cfg)
    wrapper_cfg = cfg.optim_wrapper.copy()
    wrapper_cfg.type = 'OptimWrapper'  # AmpOptimWrapper refuses to build without a GPU
    wrapper = build_optim_wrapper(model, wrapper_cfg)
    lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    params = dict(model.named_parameters())
    base_lr = cfg.optim_wrapper.optimizer.lr
    n = cfg.optim_wrapper.paramwise_cfg.num_layers
    # stage_wise ids: downsampling layers 0, stage i -> i + 1, outside the backbone N + 1.
    for pname, layer_id in [('backbone.downsample_layers.0.0.weight', 0),
                            ('backbone.downsample_layers.2.1.weight', 0),
                            ('backbone.stages.0.0.pwconv1.weight', 1),
                            ('backbone.stages.3.0.pwconv1.weight', 4),
                            ('decode_head.conv_seg.weight', n + 1),
                            ('auxiliary_head.conv_seg.weight', n + 1)]:
        expected = base_lr * 0.9**(n + 1 - layer_id)
        assert lr_of[id(params[pname])] == pytest.approx(expected), pname
    # 1-D parameters (norms, biases, layer scales) get no weight decay.
    wd_of = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    assert wd_of[id(params['backbone.stages.3.0.gamma'])] == 0.0
    assert wd_of[id(params['backbone.stages.3.0.pwconv1.weight'])] == 0.05


def test_swin_row_optimizer():
    cfg = load(SWIN)
    assert cfg.model.backbone.type == 'SwinTransformer'
    assert cfg.model.backbone.init_cfg.checkpoint.startswith(
        'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/')
    assert 'constructor' not in cfg.optim_wrapper
    model = build_model(cfg, 'cpu')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert {g['lr'] for g in wrapper.optimizer.param_groups} == {6e-5}


def test_upernet_t_gflops():
    """UperNet ConvNeXt-T at 2048x512, counted like the paper (mmengine.analysis, tensor mode)."""
    from mmengine.analysis import FlopAnalyzer
    cfg = load('upernet_convnext_t_ade20k.py')
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg, 'cpu').eval()
    row = paper_row('upernet_convnext_t_ade20k')
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.zeros(1, 3, *row['flops_shape']), ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        gflops = analyzer.total() / 1e9
    paper = row['flops'] / 1e9
    assert abs(gflops - paper) / paper < 0.05, f'{gflops:.1f} GFLOPs vs {paper}'


@pytest.mark.parametrize('name', DEMO_COMPARISONS)
def test_demo_comparisons_share_the_recipe(name):
    """Same data, schedule, optimizer and heads as the ConvNeXt demo; only the backbone (and
    what follows from it: input widths, no layer-wise decay, Swin's weight-decay exemptions)."""
    ours, other = load(DEMO), load(name)
    for key in ('train_dataloader', 'val_dataloader', 'train_cfg', 'param_scheduler',
                'auto_scale_lr', 'randomness'):
        assert other.get(key) == ours.get(key), key
    assert other.optim_wrapper.optimizer == ours.optim_wrapper.optimizer
    assert other.optim_wrapper.constructor == 'DefaultOptimWrapperConstructor'
    for head in ('decode_head', 'auxiliary_head'):
        a, b = dict(ours.model[head]), dict(other.model[head])
        a.pop('in_channels'), b.pop('in_channels')
        assert a == b, head
    assert other.model.backbone.type != 'ConvNeXt' and other.model.backbone.init_cfg is None
