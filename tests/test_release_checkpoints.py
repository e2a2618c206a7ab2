"""The official ConvNeXt detection and segmentation releases load into our paper configs.

Those files are full checkpoints of MMDetection 2.x / MMSegmentation 0.x models saved through
mmcv 1.x by the release code (facebookresearch/ConvNeXt, ``object_detection/`` and
``semantic_segmentation/``: ``mmcv_custom/.../checkpoint.py``). The ones here are built as that
code saved them, from facts only (no release code runs here):

* ``state_dict``: an ``OrderedDict`` of cpu tensors with mmcv's ``_metadata`` (module versions)
  holding the official model's names and shapes. The backbone's come from the official class
  definition (:func:`official_backbone_shapes`; checked once against the official class itself
  for T, S, B, L and XL); the neck's and heads' from MMDetection's / MMSegmentation's own modules
  built from the official head configs (``ConvFCBBoxHead`` with 4 shared convs + 1 FC and SyncBN
  in each cascade stage, ``Shared2FCBBoxHead`` for Mask R-CNN, ``UPerHead`` + ``FCNHead`` with
  SyncBN), whose parameter names did not change between 2.x and 3.x.
* ``meta``: ``mmcv_version``, ``time``, ``CLASSES`` (the 80 COCO / 150 ADE20K names),
  ``PALETTE`` (segmentation), ``config`` (the config text), ``env_info``, ``seed``,
  ``exp_name``, ``mmdet_version`` / ``mmseg_version``, ``epoch``, ``iter``, ``hook_msgs``.
* ``optimizer``: an AdamW state dict (moments of a few parameters, layer-decay param groups
  over all of them; a real one holds the moments of every parameter).
* ``amp``: apex's loss-scaler state (the release code has this line commented out, so real
  files may lack it).

Each is written with ``torch.save`` of a plain dict, as mmcv 1.x did.
"""
import collections
import glob
import importlib
import json
import os.path as osp

import pytest
import torch
from conftest import load_tool, run_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope

import backbones  # noqa: F401
from backbones.datasets import make_shapes
from backbones.engine.hooks import CheckpointMismatchError, checkpoint_fit, describe_fit
from backbones.models import convert

CASCADE_T = 'configs/detection/cascade_convnext_t_coco.py'
MASK_RCNN_T = 'configs/detection/mask_rcnn_convnext_t_coco.py'
UPERNET_T = 'configs/segmentation/upernet_convnext_t_ade20k.py'
CASCADE_SHAPES = 'configs/detection/cascade_convnext_atto_shapes.py'
UPERNET_SHAPES = 'configs/segmentation/upernet_convnext_atto_shapes.py'

SIZES = {  # the paper's ConvNeXt sizes (official configs: depths, dims)
    'T': ([3, 3, 9, 3], [96, 192, 384, 768]),
    'S': ([3, 3, 27, 3], [96, 192, 384, 768]),
    'B': ([3, 3, 27, 3], [128, 256, 512, 1024]),
    'L': ([3, 3, 27, 3], [192, 384, 768, 1536]),
    'XL': ([3, 3, 27, 3], [256, 512, 1024, 2048]),
}
ENV = dict(OMP_NUM_THREADS='1')

test_tool = load_tool('test.py')


# --- the official model, as names and shapes ----------------------------------------------

def official_backbone_shapes(depths, dims, in_chans=3):
    """Names and shapes of the official detection / segmentation ConvNeXt backbone, in its
    ``state_dict`` order: stem and downsampling layers (conv + channels-first LayerNorm), the
    stages' blocks (layer-scale ``gamma`` first: a module's own parameters precede its
    children's), and an output LayerNorm ``norm{i}`` for each of the 4 stages."""
    shapes = collections.OrderedDict()
    shapes['downsample_layers.0.0.weight'] = (dims[0], in_chans, 4, 4)
    shapes['downsample_layers.0.0.bias'] = (dims[0], )
    shapes['downsample_layers.0.1.weight'] = (dims[0], )
    shapes['downsample_layers.0.1.bias'] = (dims[0], )
    for i in range(1, 4):
        shapes[f'downsample_layers.{i}.0.weight'] = (dims[i - 1], )
        shapes[f'downsample_layers.{i}.0.bias'] = (dims[i - 1], )
        shapes[f'downsample_layers.{i}.1.weight'] = (dims[i], dims[i - 1], 2, 2)
        shapes[f'downsample_layers.{i}.1.bias'] = (dims[i], )
    for i, (depth, dim) in enumerate(zip(depths, dims)):
        for j in range(depth):
            block = f'stages.{i}.{j}.'
            shapes.update({
                block + 'gamma': (dim, ),
                block + 'dwconv.weight': (dim, 1, 7, 7), block + 'dwconv.bias': (dim, ),
                block + 'norm.weight': (dim, ), block + 'norm.bias': (dim, ),
                block + 'pwconv1.weight': (4 * dim, dim), block + 'pwconv1.bias': (4 * dim, ),
                block + 'pwconv2.weight': (dim, 4 * dim), block + 'pwconv2.bias': (dim, )})
    for i, dim in enumerate(dims):
        shapes[f'norm{i}.weight'] = (dim, )
        shapes[f'norm{i}.bias'] = (dim, )
    return shapes


def _ce(**kw):
    return dict(type='CrossEntropyLoss', **kw)


def official_detector_heads(kind, dims, num_classes=80):
    """The neck and heads of the official ``mask_rcnn_convnext_fpn`` / ``cascade_mask_rcnn_
    convnext_fpn`` base models as the release configs override them (FPN on the backbone's
    widths; cascade: 4conv1fc box heads with SyncBN, class-specific GIoU regression)."""
    def coder(stds):
        return dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=stds)

    def extractor(size):
        return dict(type='SingleRoIExtractor', out_channels=256, featmap_strides=[4, 8, 16, 32],
                    roi_layer=dict(type='RoIAlign', output_size=size, sampling_ratio=0))

    mask_head = dict(type='FCNMaskHead', num_convs=4, in_channels=256, conv_out_channels=256,
                     num_classes=num_classes, loss_mask=_ce(use_mask=True, loss_weight=1.0))
    rpn = dict(type='RPNHead', in_channels=256, feat_channels=256,
               anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                     strides=[4, 8, 16, 32, 64]),
               bbox_coder=coder([1.0] * 4), loss_cls=_ce(use_sigmoid=True, loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    if kind == 'mask_rcnn':
        roi = dict(type='StandardRoIHead', bbox_roi_extractor=extractor(7),
                   bbox_head=dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
                                  roi_feat_size=7, num_classes=num_classes,
                                  bbox_coder=coder([0.1, 0.1, 0.2, 0.2]),
                                  reg_class_agnostic=False, loss_cls=_ce(use_sigmoid=False),
                                  loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
                   mask_roi_extractor=extractor(14), mask_head=mask_head)
        model_type = 'MaskRCNN'
    else:
        stages = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
        roi = dict(type='CascadeRoIHead', num_stages=3, stage_loss_weights=[1, 0.5, 0.25],
                   bbox_roi_extractor=extractor(7),
                   bbox_head=[dict(type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1,
                                   in_channels=256, conv_out_channels=256, fc_out_channels=1024,
                                   roi_feat_size=7, num_classes=num_classes,
                                   bbox_coder=coder(stds), reg_class_agnostic=False,
                                   reg_decoded_bbox=True,
                                   norm_cfg=dict(type='SyncBN', requires_grad=True),
                                   loss_cls=_ce(use_sigmoid=False, loss_weight=1.0),
                                   loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
                              for stds in stages],
                   mask_roi_extractor=extractor(14), mask_head=mask_head)
        rpn['loss_bbox'] = dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)
        model_type = 'CascadeRCNN'
    neck = dict(type='FPN', in_channels=list(dims), out_channels=256, num_outs=5)
    return model_type, dict(neck=neck, rpn_head=rpn, roi_head=roi)


def official_segmentor_heads(dims, num_classes=150):
    """The heads of the official ``upernet_convnext`` base model as the ADE20K configs set
    them (UPerHead on all four stages, FCN auxiliary head on stage 2, SyncBN)."""
    norm = dict(type='SyncBN', requires_grad=True)
    decode = dict(type='UPerHead', in_channels=list(dims), in_index=[0, 1, 2, 3],
                  pool_scales=(1, 2, 3, 6), channels=512, dropout_ratio=0.1,
                  num_classes=num_classes, norm_cfg=norm, align_corners=False,
                  loss_decode=_ce(use_sigmoid=False, loss_weight=1.0))
    auxiliary = dict(type='FCNHead', in_channels=dims[2], in_index=2, channels=256, num_convs=1,
                     concat_input=False, dropout_ratio=0.1, num_classes=num_classes,
                     norm_cfg=norm, align_corners=False,
                     loss_decode=_ce(use_sigmoid=False, loss_weight=0.4))
    return 'EncoderDecoder', dict(decode_head=decode, auxiliary_head=auxiliary)


def build_on_meta(scope, cfg):
    """An MMDetection / MMSegmentation module of ``cfg`` without memory (names and shapes)."""
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
        return registry.build(cfg)


# --- the file, as mmcv 1.x saved it -------------------------------------------------------

ENV_INFO = '\n'.join([  # mmcv 1.x collect_env(), as the release runs logged it (representative)
    'sys.platform: linux', 'Python: 3.8.12 (default, Oct 12 2021, 13:49:34) [GCC 7.5.0]',
    'CUDA available: True', 'GPU 0,1,2,3,4,5,6,7: Tesla V100-SXM2-32GB',
    'CUDA_HOME: /usr/local/cuda', 'NVCC: Build cuda_11.1.TC455_06.29190527_0', 'GCC: gcc 7.5.0',
    'PyTorch: 1.8.1', 'TorchVision: 0.9.1', 'OpenCV: 4.5.4', 'MMCV: 1.4.0',
    'MMCV Compiler: GCC 7.3', 'MMCV CUDA Compiler: 11.1'])


def release_state_dict(parts, modules, fill=True):
    """``OrderedDict`` of cpu tensors named ``part.name`` with mmcv's ``_metadata``.

    Args:
        parts: ``{top-level name: {name: shape}}`` in model order.
        modules: ``{top-level name: module}`` for the module versions (BN: 2).
        fill: Tensor ``i`` holds the constant :func:`marker` ``(i)``; else memoryless
            (meta-device) tensors, for name and shape checks.
    """
    state = collections.OrderedDict()
    metadata = collections.OrderedDict([('', dict(version=1))])
    for part, shapes in parts.items():
        for name, shape in shapes.items():
            key = f'{part}.{name}'
            if name.endswith('num_batches_tracked'):
                state[key] = torch.tensor(1000 + len(state))
            elif fill:
                state[key] = torch.full(shape, marker(len(state)))
            else:
                state[key] = torch.empty(shape, device='meta')
            prefix = key.rsplit('.', 1)[0].split('.')
            for n in range(1, len(prefix) + 1):
                metadata.setdefault('.'.join(prefix[:n]), dict(version=1))
        for name, module in modules.get(part, torch.nn.Module()).named_modules():
            metadata[f'{part}.{name}' if name else part] = dict(version=module._version)
    state._metadata = metadata
    return state


def marker(i):
    """A value of tensor ``i`` that tells the tensors apart (exact in float32)."""
    return (i % 251 + 1) / 256


def release_checkpoint(model_type, backbone, heads, scope, config_text, classes, epoch, fill=True,
                       palette=None):
    """A full mmcv 1.x checkpoint of the official model made of ``backbone`` (names and
    shapes) and ``heads`` (configs built with MMDetection's / MMSegmentation's modules)."""
    modules = {part: build_on_meta(scope, cfg) for part, cfg in heads.items()}
    parts = dict(backbone=backbone)
    parts.update({part: {k: tuple(v.shape) for k, v in m.state_dict().items()}
                  for part, m in modules.items()})
    state = release_state_dict(parts, modules, fill)
    return wrap_release(state, model_type, scope, config_text, classes, epoch, palette)


def wrap_release(state, model_type, scope, config_text, classes, epoch, palette=None):
    """``state`` wrapped as mmcv 1.x's ``save_checkpoint`` wrote it (meta, optimizer, amp)."""
    library = dict(mmdet=('mmdet_version', '2.11.0+6a979e2'),
                   mmseg=('mmseg_version', '0.11.0+8b57ed1'))[scope]
    meta = {library[0]: library[1], 'env_info': ENV_INFO, 'config': config_text, 'seed': 0,
            'exp_name': f'{model_type.lower()}_convnext.py', 'epoch': epoch,
            'iter': epoch * 7330 if scope == 'mmdet' else 160000,
            'hook_msgs': dict(last_ckpt=f'work_dirs/{model_type.lower()}/latest.pth'),
            'mmcv_version': '1.4.0', 'time': 'Thu Jan  6 10:23:45 2022', 'CLASSES': classes}
    if palette is not None:
        meta['PALETTE'] = palette
    buffers = ('running_mean', 'running_var', 'num_batches_tracked')
    params = [k for k in state if not k.endswith(buffers)]
    decay = [i for i, k in enumerate(params) if state[k].dim() > 1]
    no_decay = [i for i, k in enumerate(params) if state[k].dim() <= 1]
    groups = [dict(weight_decay=w, params=ids, param_names=[params[i] for i in ids],
                   lr_scale=0.7 ** (6 - n), group_name=f'layer_{n}_{name}', lr=2e-4,
                   initial_lr=2e-4, betas=(0.9, 0.999), eps=1e-8, amsgrad=False)
              for n, (w, ids, name) in enumerate([(0.05, decay, 'decay'),
                                                  (0.0, no_decay, 'no_decay')])]
    moments = {i: dict(step=epoch * 7330, exp_avg=torch.zeros(state[params[i]].shape),
                       exp_avg_sq=torch.zeros(state[params[i]].shape)) for i in range(3)}
    return {'meta': meta, 'state_dict': state,
            'optimizer': dict(state=moments, param_groups=groups),
            'amp': collections.OrderedDict(loss_scaler0=dict(loss_scale=512.0, unskipped=417))}


def save_as_mmcv(checkpoint, path):
    with open(path, 'wb') as f:  # mmcv 1.x: torch.save of the dict into an open file
        torch.save(checkpoint, f)
        f.flush()
    return str(path)


def config_text(model_type, depths, dims, heads):
    """The release's ``meta.config``: mmcv's ``Config.pretty_text`` of the official model."""
    backbone = dict(type='ConvNeXt', in_chans=3, depths=list(depths), dims=list(dims),
                    drop_path_rate=0.4, layer_scale_init_value=1.0, out_indices=[0, 1, 2, 3])
    return Config(dict(model=dict(type=model_type, pretrained=None, backbone=backbone,
                                  **heads))).pretty_text


def official_release(config_kind, size='T', num_classes=None, fill=True):
    """The release-style checkpoint of an official model (``cascade``, ``mask_rcnn`` or
    ``upernet``) of ConvNeXt ``size``."""
    depths, dims = SIZES[size]
    if config_kind == 'upernet':
        from mmseg.datasets import ADE20KDataset
        model_type, heads = official_segmentor_heads(dims, num_classes or 150)
        meta = ADE20KDataset.METAINFO
        return release_checkpoint(model_type, official_backbone_shapes(depths, dims), heads,
                                  'mmseg', config_text(model_type, depths, dims, heads),
                                  meta['classes'][:num_classes or 150], 16, fill,
                                  palette=[list(c) for c in meta['palette']])
    from mmdet.datasets import CocoDataset
    model_type, heads = official_detector_heads(config_kind, dims, num_classes or 80)
    classes = CocoDataset.METAINFO['classes'][:num_classes or 80]
    return release_checkpoint(model_type, official_backbone_shapes(depths, dims), heads,
                              'mmdet', config_text(model_type, depths, dims, heads), classes, 36,
                              fill)


# --- loading them through tools/test.py's runner ------------------------------------------

def tool_runner(config, checkpoint, work_dir, *extra):
    """The runner tools/test.py builds for ``config`` and ``checkpoint`` (not run)."""
    return test_tool.build_test_runner(test_tool.parse_args(
        [config, str(checkpoint), '--work-dir', str(work_dir), *extra]))


def bare(model):
    while hasattr(model, 'module'):
        model = model.module
    return model


@pytest.mark.parametrize('config,kind,count', [(CASCADE_T, 'cascade', 334),
                                               (MASK_RCNN_T, 'mask_rcnn', 228),
                                               (UPERNET_T, 'upernet', 268)])
def test_official_release_fits_paper_config_exactly(tmp_path, config, kind, count):
    checkpoint = official_release(kind)
    path = save_as_mmcv(checkpoint, tmp_path / f'{kind}_t_release.pth')
    del checkpoint
    runner = tool_runner(config, path, tmp_path / 'work')
    hook = next(h for h in runner.hooks if type(h).__name__ == 'CheckpointMatchHook')
    assert hook.exact and not hook.warn_only
    # What Runner.test() does with load_from (the hook checks the fit inside).
    loaded = runner.load_checkpoint(path)
    fit = checkpoint_fit(runner.model, loaded['state_dict'])
    assert (len(fit.model_shapes), fit.missing, fit.unexpected, fit.wrong) == (count, [], [], [])
    assert sorted(loaded) == ['amp', 'meta', 'optimizer', 'state_dict']
    assert loaded['meta']['mmcv_version'] == '1.4.0'
    # Every tensor landed under its own name (each file tensor holds its own constant).
    for key, value in bare(runner.model).state_dict().items():
        assert torch.equal(value, loaded['state_dict'][key]), key


@pytest.mark.parametrize('config,kind,size', [
    ('configs/detection/cascade_convnext_s_coco.py', 'cascade', 'S'),
    ('configs/detection/cascade_convnext_b_coco.py', 'cascade', 'B'),
    ('configs/detection/cascade_convnext_b_in22k_coco.py', 'cascade', 'B'),
    ('configs/detection/cascade_convnext_l_in22k_coco.py', 'cascade', 'L'),
    ('configs/detection/cascade_convnext_xl_in22k_coco.py', 'cascade', 'XL'),
    ('configs/segmentation/upernet_convnext_s_ade20k.py', 'upernet', 'S'),
    ('configs/segmentation/upernet_convnext_b_ade20k.py', 'upernet', 'B'),
    ('configs/segmentation/upernet_convnext_b_in22k_ade20k_640.py', 'upernet', 'B'),
    ('configs/segmentation/upernet_convnext_l_in22k_ade20k_640.py', 'upernet', 'L'),
    ('configs/segmentation/upernet_convnext_xl_in22k_ade20k_640.py', 'upernet', 'XL')])
def test_every_other_release_fits_its_config(config, kind, size):
    # Names and shapes only (memoryless tensors); the T rows above take the whole load path.
    scope = 'mmseg' if kind == 'upernet' else 'mmdet'
    model = build_on_meta(scope, Config.fromfile(config).model)
    state = official_release(kind, size, fill=False)['state_dict']
    fit = checkpoint_fit(model, state)
    assert fit.exact and len(fit.model_shapes) == len(state), describe_fit(
        fit, model, {}, size, 'misfits')


@pytest.fixture(scope='module')
def mask_rcnn_t(tmp_path_factory):
    """tools/test.py's runner of the Mask R-CNN T config, the checkpoint named release.pth."""
    work = tmp_path_factory.mktemp('mask_rcnn_t')
    return tool_runner(MASK_RCNN_T, work / 'release.pth', work)


def load_misfit(runner, checkpoint):
    """Call the load hooks as Runner.load_checkpoint does, on an in-memory checkpoint."""
    with pytest.raises(CheckpointMismatchError) as info:
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    return str(info.value)


def test_wrong_size_names_depths_and_dims(mask_rcnn_t):
    msg = load_misfit(mask_rcnn_t, official_release('mask_rcnn', 'S', fill=False))
    print(msg)
    path = mask_rcnn_t._load_from
    assert msg.startswith(f"checkpoint '{path}' does not fit the model exactly: 228 of the 228 "
                          f"tensors of MaskRCNN match it by name and shape (config "
                          f"'{MASK_RCNN_T}'); 0 missing, 162 unexpected, 0 of another shape.")
    assert 'unexpected: 162 (backbone 162), e.g. backbone.stages.2.9.gamma' in msg
    assert ("wrong size: the checkpoint's backbone has depths [3, 3, 27, 3] dims "
            "[96, 192, 384, 768] (arch 'small'), the config's has depths [3, 3, 9, 3] dims "
            "[96, 192, 384, 768] (arch 'tiny').") in msg
    assert ("the checkpoint's meta says: model MaskRCNN, backbone ConvNeXt depths "
            "[3, 3, 27, 3] dims [96, 192, 384, 768], num_classes 80, 80 class names.") in msg
    assert '--allow-partial' in msg

    msg = load_misfit(mask_rcnn_t, official_release('mask_rcnn', 'B', fill=False))
    assert 'of another shape: 190 (backbone 186, neck 4): backbone.downsample_layers.0.0.' \
           'weight: (128, 3, 4, 4) in the file, (96, 3, 4, 4) in the model;' in msg
    assert "depths [3, 3, 27, 3] dims [128, 256, 512, 1024] (arch 'base')" in msg


def test_wrong_head_names_the_class_counts(mask_rcnn_t):
    msg = load_misfit(mask_rcnn_t, official_release('mask_rcnn', num_classes=20, fill=False))
    print(msg)
    assert '0 missing, 0 unexpected, 6 of another shape.' in msg
    assert 'of another shape: 6 (roi_head 6): roi_head.bbox_head.fc_cls.weight: (21, 1024) in ' \
           'the file, (81, 1024) in the model;' in msg
    assert 'wrong head: 20 classes in the checkpoint, 80 in the config (roi_head.bbox_head.' \
           'fc_cls, roi_head.mask_head.conv_logits).' in msg
    assert 'num_classes 20, 20 class names.' in msg
    assert 'wrong size' not in msg


def test_training_load_from_reports_the_same_way(mask_rcnn_t, monkeypatch):
    # load_from in training: min_match decides; a partial fit is a grouped warning.
    from backbones.engine import hooks
    logged = []
    monkeypatch.setattr(hooks, 'print_log', lambda msg, **kw: logged.append(msg))
    hook = hooks.CheckpointMatchHook(min_match=0.5)
    hook.after_load_checkpoint(mask_rcnn_t, official_release('mask_rcnn', num_classes=20,
                                                             fill=False))
    assert 'fits the model only partly: 222 of the 228 tensors' in logged[0]
    assert 'wrong head: 20 classes in the checkpoint, 80 in the config' in logged[0]
    with pytest.raises(CheckpointMismatchError, match=r'was made for another model: 38 of the '
                       r'228 tensors(.|\n)*wrong size(.|\n)*Check load_from'):
        hook.after_load_checkpoint(mask_rcnn_t, official_release('mask_rcnn', 'B', fill=False))


# --- the shapes configs through tools/test.py ---------------------------------------------

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('release_shapes'))
    make_shapes(root, seed=0, size=64, det_train=1, det_val=4, seg_train=1, seg_val=4,
                layouts=('coco', 'ade'))
    return root


def shapes_release(config, scope, seed=0, **model_options):
    """A release-style checkpoint of ``config``'s model (seeded init), as mmcv 1.x saved it."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(model_options)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    model.init_weights()
    own = model.state_dict()
    state = collections.OrderedDict((k, v.detach().cpu().clone()) for k, v in own.items())
    state._metadata = getattr(own, '_metadata', collections.OrderedDict())
    metainfo = cfg.test_dataloader.dataset.metainfo
    palette = [list(c) for c in metainfo['palette']] if scope == 'mmseg' else None
    return wrap_release(state, cfg.model.type, scope, cfg.pretty_text,
                        tuple(metainfo['classes']), 1, palette)


def read_metrics(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '2*', '2*.json')))
    assert files, f'no metrics json under {work_dir}'
    with open(files[-1]) as f:
        return json.load(f)


def test_release_style_detector_evaluates_with_test_tool(shapes, tmp_path):
    path = save_as_mmcv(shapes_release(CASCADE_SHAPES, 'mmdet'), tmp_path / 'cascade.pth')
    root = osp.join(shapes, 'coco') + '/'
    work = str(tmp_path / 'test')
    run_tool(['tools/test.py', CASCADE_SHAPES, path, '--work-dir', work, '--cfg-options',
              f'test_dataloader.dataset.data_root={root}',
              f'test_evaluator.ann_file={root}annotations/instances_val.json'], **ENV)
    metrics = read_metrics(work)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert isinstance(metrics[key], float) and -1 <= metrics[key] <= 1, metrics


def seg_options(shapes):
    root = osp.join(shapes, 'ade')
    return ['--cfg-options'] + [f'{split}_dataloader.dataset.data_root={root}'
                                for split in ('train', 'val', 'test')]


def test_release_style_segmentor_evaluates_and_misfits_stop_first(shapes, tmp_path, monkeypatch):
    fitting = save_as_mmcv(shapes_release(UPERNET_SHAPES, 'mmseg'), tmp_path / 'upernet.pth')
    work = str(tmp_path / 'fits')
    run_tool(['tools/test.py', UPERNET_SHAPES, fitting, '--work-dir', work,
              *seg_options(shapes)], **ENV)
    metrics = read_metrics(work)
    assert set(metrics) >= {'aAcc', 'mIoU', 'mAcc'} and 0 <= metrics['mIoU'] <= 100, metrics

    # ADE20K's 150 classes against the config's 4: one error, before anything is evaluated.
    head = dict(num_classes=150, loss_decode=dict(class_weight=None))
    misfit = save_as_mmcv(shapes_release(UPERNET_SHAPES, 'mmseg', model=dict(
        decode_head=head, auxiliary_head=head)), tmp_path / 'ade150.pth')
    work = str(tmp_path / 'misfit')
    with pytest.raises(CheckpointMismatchError) as info:
        test_tool.main([UPERNET_SHAPES, misfit, '--work-dir', work, *seg_options(shapes)])
    msg = str(info.value)
    print(msg)
    assert f"checkpoint '{misfit}' does not fit the model exactly" in msg
    assert f"(config '{UPERNET_SHAPES}')" in msg
    assert 'of another shape: 4 (decode_head 2, auxiliary_head 2)' in msg
    assert 'wrong head: 150 classes in the checkpoint, 4 in the config (decode_head.conv_seg, ' \
           'auxiliary_head.conv_seg).' in msg
    assert 'num_classes 150, 4 class names' in msg
    assert not glob.glob(osp.join(work, '2*', '2*.json'))  # nothing was evaluated

    from backbones.engine import hooks
    logged = []
    monkeypatch.setattr(hooks, 'print_log', lambda msg, **kw: logged.append(msg))
    metrics = test_tool.main([UPERNET_SHAPES, misfit, '--allow-partial', '--work-dir', work,
                              *seg_options(shapes)])
    assert 0 <= metrics['mIoU'] <= 100
    assert f"checkpoint '{misfit}' fits the model only partly: 210 of the 214 tensors" \
           in logged[0]
    assert 'wrong head: 150 classes in the checkpoint, 4 in the config' in logged[0]


def test_conversion_point_feeds_what_mmengine_loads(tmp_path):
    # A whole segmentor whose backbone is in mmpretrain's names: the converted state is what
    # the exact check compares and what MMEngine then loads into the model.
    path = str(tmp_path / 'foreign.pth')
    runner = tool_runner(UPERNET_SHAPES, path, tmp_path / 'work')
    own = bare(runner.model).state_dict()
    filled = {k: torch.full_like(v, 0.25) if v.is_floating_point() else v.clone()
              for k, v in own.items()}
    backbone = {k[len('backbone.'):]: v for k, v in filled.items() if k.startswith('backbone.')}
    state = {k: v for k, v in filled.items() if not k.startswith('backbone.')}
    state.update(convert.convert_to_mmpretrain(backbone))
    assert 'backbone.stages.0.0.depthwise_conv.weight' in state
    save_as_mmcv(dict(state_dict=state, meta={}), path)
    loaded = runner.load_checkpoint(path)  # the exact check passes on the converted names
    assert sorted(loaded['state_dict']) == sorted(own)
    model = bare(runner.model).state_dict()
    for key in ('decode_head.conv_seg.weight', 'backbone.stages.0.0.dwconv.weight',
                'backbone.norm3.weight'):
        assert torch.all(model[key] == 0.25), key


def test_description_without_a_backbone_or_meta():
    fit = checkpoint_fit(torch.nn.Linear(3, 2), {'weight': torch.zeros(2, 4)})
    text = describe_fit(fit, torch.nn.Linear(3, 2), {'state_dict': {}}, 'x.pth', 'misfits')
    assert text.splitlines()[0] == ("checkpoint 'x.pth' misfits: 0 of the 2 tensors of Linear "
                                    'match it by name and shape; 1 missing, 0 unexpected, 1 of '
                                    'another shape.')
    assert 'weight: (2, 4) in the file, (2, 3) in the model' in text
