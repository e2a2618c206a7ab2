"""Memory layout never changes a result.

Our backbones compute channels-last inside and hand out contiguous NCHW maps; the mmcv ops that
read raw feature-map memory are guarded (backbones.ops) so that a user's channels-last model
gets the same results too. The property tests vary the layout of the image batch, inside the
backbone, at the backbone/neck boundary and at the neck/heads boundary, and require the same
detections, segmentation logits and losses as the plain run.
"""
import contextlib
import copy
import importlib
import os.path as osp

import pytest
import torch
from conftest import REPO
from equivalence import (assert_close, assert_losses_close, assert_same_detections, build_model,
                         det_batch, losses_of, predictions_of, seg_batch)
from mmengine.config import Config

import backbones  # noqa: F401  (installs the guards)
from backbones import (ROADMAP_STEPS, ConvNeXt, ConvNeXtBlock, ConvNeXtIsotropic, LayerNorm2d,
                       ModernizedResNet, set_fast_inference)
from backbones.ops import RAW_MEMORY_FUNCTIONS, is_guarded

CL = torch.channels_last


def channels_last(t):
    return t.contiguous(memory_format=CL)


def is_permuted(t):
    return t.is_contiguous(memory_format=CL) and not t.is_contiguous()


BACKBONES = {
    'convnext atto': lambda **kw: ConvNeXt('atto', **kw),
    'convnext v2 atto': lambda **kw: ConvNeXt('atto', use_grn=True, **kw),
    'convnext out_indices (1, 3)': lambda **kw: ConvNeXt('atto', out_indices=(1, 3), **kw),
    'isotropic': lambda **kw: ConvNeXtIsotropic(dict(depth=4, dim=64), **kw),
    **{f'roadmap {step}': (lambda step=step, **kw: ModernizedResNet(step, **kw))
       for step in ROADMAP_STEPS},
}


def _set_with_cp(model, enabled):
    for module in model.modules():
        if hasattr(module, 'with_cp'):
            module.with_cp = enabled


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbones_return_contiguous_nchw(name):
    """In training and eval, with activation checkpointing and with the fast path, for
    contiguous and channels-last images, every map a backbone returns is contiguous NCHW."""
    torch.manual_seed(0)
    model = BACKBONES[name]()
    x = torch.randn(2, 3, 32, 32)
    variants = ['plain', 'with_cp'] + ([] if name.startswith('roadmap') else ['fast'])
    for variant in variants:
        _set_with_cp(model, variant == 'with_cp')
        set_fast_inference(model, variant == 'fast')
        for train in (True, False):
            model.train(train)
            for images in (x, channels_last(x)):
                outs = list(model(images)) + list(model.forward_features(images))
                for i, out in enumerate(outs):
                    assert out.dim() == 4 and out.is_contiguous(), (
                        f'{name} ({variant}, {"train" if train else "eval"}): output {i} has '
                        f'strides {out.stride()} for shape {tuple(out.shape)}')


@pytest.mark.parametrize('fast', [False, True])
def test_block_and_layernorm_keep_the_callers_layout(fast):
    norm, block = LayerNorm2d(16).eval(), ConvNeXtBlock(16, fast_inference=fast).eval()
    x = torch.randn(2, 16, 8, 8)
    for module in (norm, block):
        with torch.no_grad():
            plain, permuted = module(x), module(channels_last(x))
        assert plain.is_contiguous() and is_permuted(permuted), type(module).__name__
        assert_close(type(module).__name__, permuted, plain, atol=1e-5)


def test_every_listed_mmcv_function_is_guarded():
    for module, name in RAW_MEMORY_FUNCTIONS:
        assert is_guarded(getattr(importlib.import_module(module), name)), f'{module}.{name}'


def _mmcv_cases():
    from mmcv.ops import DeformConv2d, ModulatedDeformConv2d, PSAMask, RoIAlign
    torch.manual_seed(0)
    rois = torch.tensor([[0, 1., 2, 15, 12], [1, 3, 3, 20, 18], [0, 0, 0, 23, 19]])
    offset = torch.randn(2, 18, 20, 24) * 2
    mask = torch.rand(2, 9, 20, 24)
    deform = DeformConv2d(16, 8, 3, padding=1)
    modulated = ModulatedDeformConv2d(16, 8, 3, padding=1)
    return {
        'RoIAlign': (lambda x: RoIAlign(7, 0.5, 0)(x, rois), 16),
        'RoIAlign (max)': (lambda x: RoIAlign(5, 0.5, 2, pool_mode='max', aligned=False)(x, rois),
                           16),
        'PSAMask': (lambda x: PSAMask('collect', (5, 5))(x), 25),
        'DeformConv2d': (lambda x: deform(x, offset), 16),
        'ModulatedDeformConv2d': (lambda x: modulated(x, offset, mask), 16),
    }


@pytest.mark.parametrize('op', ['RoIAlign', 'RoIAlign (max)', 'PSAMask', 'DeformConv2d',
                                'ModulatedDeformConv2d'])
def test_guarded_mmcv_ops_read_channels_last_correctly(op):
    """mmcv's kernels with a CPU implementation: outputs and input gradients are the same for a
    contiguous and a channels-last feature map (RoIAlign read the latter scrambled)."""
    fn, channels = _mmcv_cases()[op]
    x = torch.randn(2, channels, 20, 24)
    a, b = x.clone().requires_grad_(), channels_last(x).requires_grad_()
    out_a, out_b = fn(a), fn(b)
    assert_close(f'{op} output', out_b, out_a, atol=1e-5)
    weights = torch.randn_like(out_a)
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    assert_close(f'{op} input gradient', b.grad, a.grad, atol=1e-5)


# --- whole models: the layout varied at four places -------------------------------------------

def _to_channels_last_output(module, args, output):
    if torch.is_tensor(output):
        return channels_last(output)
    return type(output)(channels_last(t) for t in output)


def _to_channels_last_input(module, args):
    return (channels_last(args[0]), ) + tuple(args[1:])


def _to_nchw_output(module, args, output):
    return output.contiguous()


PLACES = ('images', 'inside backbone', 'backbone/neck', 'neck/heads')


@contextlib.contextmanager
def layout_changed_at(model, place):
    """Hooks that hand channels-last tensors across one boundary of ``model`` (inside the
    backbone: the other way round, stage 1 returns contiguous NCHW into channels-last code)."""
    if place == 'images':
        handle = model.backbone.register_forward_pre_hook(_to_channels_last_input)
    elif place == 'inside backbone':
        handle = model.backbone.stages[1].register_forward_hook(_to_nchw_output)
    elif place == 'backbone/neck':
        handle = model.backbone.register_forward_hook(_to_channels_last_output)
    else:
        neck = model.neck if hasattr(model, 'neck') else model.decode_head.lateral_convs[0]
        handle = neck.register_forward_hook(_to_channels_last_output)
    try:
        yield
    finally:
        handle.remove()


@pytest.fixture(scope='module')
def detector():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'detection',
                                   'mask_rcnn_convnext_atto_shapes.py'))
    model = build_model(cfg, 'mmdet')
    model.roi_head.test_cfg.score_thr = 0.  # random heads score under the default 0.05
    return model


@pytest.fixture(scope='module')
def segmentor():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'segmentation',
                                   'upernet_convnext_atto_shapes.py'))
    return build_model(cfg, 'mmseg')


@pytest.mark.parametrize('place', PLACES)
def test_detector_is_layout_invariant(detector, place):
    batch = det_batch(128, 160, num_images=2, with_gt=True, num_classes=3, seed=1)
    # Eval passes first: a training pass would move the running statistics of any BN.
    ref_preds = predictions_of(detector, batch)
    with layout_changed_at(detector, place):
        preds = predictions_of(detector, batch)
    ref_losses = losses_of(detector, batch)
    with layout_changed_at(detector, place):
        losses = losses_of(detector, batch)
    for i, (got, ref) in enumerate(zip(preds, ref_preds)):
        assert len(ref.pred_instances) > 0
        assert_same_detections(f'image {i}, layout changed at {place}', got.pred_instances,
                               ref.pred_instances)
    # One sampled RoI of the two images may flip its argmax: a near tie of the random head.
    one_roi = 100. / (len(batch['inputs']) * detector.train_cfg.rcnn.sampler.num)
    assert_losses_close(losses, ref_losses, accuracy_steps={'acc': one_roi})


@pytest.mark.parametrize('place', PLACES)
def test_segmentor_is_layout_invariant(segmentor, place):
    batch = seg_batch(128, 128, num_classes=3, num_images=2, seed=2)
    segmentor.eval()
    inputs = segmentor.data_preprocessor(copy.deepcopy(batch), False)['inputs']
    metas = [dict(img_shape=(128, 128))] * 2
    # Eval passes first: a training pass moves the running statistics of the heads' BN.
    with torch.no_grad():
        ref_logits = segmentor.encode_decode(inputs, metas)
        with layout_changed_at(segmentor, place):
            logits = segmentor.encode_decode(inputs, metas)
        ref_losses = losses_of(segmentor, batch)
        with layout_changed_at(segmentor, place):
            losses = losses_of(segmentor, batch)
    assert_close(f'logits, layout changed at {place}', logits, ref_logits, atol=1e-5, rtol=1e-4)
    assert_losses_close(losses, ref_losses)
