"""Our configs against their upstream counterparts, output by output.

MMDetection 3.3 and MMSegmentation 1.2 ship ConvNeXt configs of their own (inside the installed
packages, ``.mim/configs/convnext/``), built on mmpretrain's ConvNeXt: an independent
implementation of the same models. For each of our configs that has one, both models are built,
the upstream weights are copied into ours through :func:`backbones.convert_checkpoint`, and the
two must agree: detections (count, boxes, scores, masks) in eval mode, every loss of a training
forward pass on a batch with ground truth, segmentation logits; also with our inference fast
path on. This is the check that catches a bug in our model or at its boundary with mmcv's ops
(a channels-last feature map read as NCHW by RoIAlign once scrambled every RoI feature).

Stochastic depth is off in both models (its random draws differ between implementations);
samplers and dropout are seeded identically. Inputs are smaller than the paper's so that the
whole file runs in a few minutes on 2 CPU cores; the B/L/XL segmentation rows compare the
logits of backbone + neck + heads on a reduced input.
"""
import os.path as osp

import mmdet
import mmpretrain.models  # noqa: F401  (registers mmpretrain.ConvNeXt)
import mmseg
import pytest
import torch
from conftest import REPO
from equivalence import (assert_close, assert_losses_close, assert_same_detections, build_model,
                         copy_weights, det_batch, losses_of, predictions_of, seg_batch)
from mmengine.config import Config

import backbones  # noqa: F401
from backbones import set_fast_inference
from backbones.models.convert import convert_dense_model_state

UPSTREAM_DET = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'convnext')
UPSTREAM_SEG = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'convnext')

#: Our detection configs and MMDetection's counterparts.
DET_PAIRS = {
    'mask_rcnn_convnext_t_coco.py': 'mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
    'cascade_convnext_t_coco.py':
    'cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
    'cascade_convnext_s_coco.py':
    'cascade-mask-rcnn_convnext-s-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
}
#: Our segmentation configs, MMSegmentation's counterparts, and the input side used here.
SEG_PAIRS = {
    'upernet_convnext_t_ade20k.py': ('convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py',
                                     96),
    'upernet_convnext_s_ade20k.py': ('convnext-small_upernet_8xb2-amp-160k_ade20k-512x512.py',
                                     64),
    'upernet_convnext_b_ade20k.py': ('convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py',
                                     64),
    'upernet_convnext_b_in22k_ade20k_640.py':
    ('convnext-base_upernet_8xb2-amp-160k_ade20k-640x640.py', 64),
    'upernet_convnext_l_in22k_ade20k_640.py':
    ('convnext-large_upernet_8xb2-amp-160k_ade20k-640x640.py', 64),
    'upernet_convnext_xl_in22k_ade20k_640.py':
    ('convnext-xlarge_upernet_8xb2-amp-160k_ade20k-640x640.py', 64),
}
#: Rows compared in full (detections and losses, fast path too); the others on one eval pass.
FULL = ('cascade_convnext_t_coco.py', 'mask_rcnn_convnext_t_coco.py',
        'upernet_convnext_t_ade20k.py')
DET_SHAPE = (320, 416)


def fewer_rois(cfg):
    """The same detector with fewer proposals and sampled RoIs, in both models alike: the
    4-conv box heads on 1000 proposals x 3 stages would cost minutes on 2 cores."""
    model = cfg.model
    model.test_cfg.rpn.update(nms_pre=300, max_per_img=100)
    model.train_cfg.rpn_proposal.update(nms_pre=600, max_per_img=200)
    stages = model.train_cfg.rcnn
    for stage in (stages if isinstance(stages, list) else [stages]):
        stage.sampler.num = 64
    return cfg


def build_pair(ours_cfg, upstream_cfg, scope):
    ours_cfg, upstream_cfg = Config.fromfile(ours_cfg), Config.fromfile(upstream_cfg)
    if scope == 'mmdet':
        ours_cfg, upstream_cfg = fewer_rois(ours_cfg), fewer_rois(upstream_cfg)
    upstream = build_model(upstream_cfg, scope)
    ours = build_model(ours_cfg, scope, seed=1)
    assert type(upstream.backbone).__module__.startswith('mmpretrain')
    assert isinstance(ours.backbone, backbones.ConvNeXt)
    copy_weights(upstream, ours, convert_dense_model_state)
    return upstream, ours


@pytest.fixture(scope='module')
def det_pair(request):
    ours, theirs = request.param, DET_PAIRS[request.param]
    upstream, model = build_pair(osp.join(REPO, 'configs', 'detection', ours),
                                 osp.join(UPSTREAM_DET, theirs), 'mmdet')
    # Every proposal that survives NMS is kept (score_thr 0): a random-weight head scores all
    # classes near 1/81, under the configs' 0.05, and there would be nothing to compare.
    for m in (upstream, model):
        m.roi_head.test_cfg.score_thr = 0.
    return ours, upstream, model


@pytest.mark.parametrize('det_pair', sorted(DET_PAIRS), indirect=True)
def test_detections_equal_upstream(det_pair):
    name, upstream, ours = det_pair
    batch = det_batch(*DET_SHAPE)
    ref = predictions_of(upstream, batch)[0].pred_instances
    got = predictions_of(ours, batch)[0].pred_instances
    assert len(ref) > 0
    assert_same_detections(name, got, ref)
    if name in FULL:
        set_fast_inference(ours, True)
        try:
            fast = predictions_of(ours, batch)[0].pred_instances
        finally:
            set_fast_inference(ours, False)
        assert_same_detections(f'{name} (fast path)', fast, ref, score_atol=2e-4)


@pytest.mark.parametrize('det_pair', [n for n in sorted(DET_PAIRS) if n in FULL], indirect=True)
def test_detector_losses_equal_upstream(det_pair):
    name, upstream, ours = det_pair
    batch = det_batch(*DET_SHAPE, num_images=2, with_gt=True, seed=3)
    ref = losses_of(upstream, batch)
    got = losses_of(ours, batch)
    assert any('mask' in k for k in ref) and any('bbox' in k for k in ref), sorted(ref)
    assert_losses_close(got, ref)


@pytest.mark.parametrize('name', sorted(SEG_PAIRS))
def test_segmentor_equals_upstream(name):
    theirs, side = SEG_PAIRS[name]
    upstream, ours = build_pair(osp.join(REPO, 'configs', 'segmentation', name),
                                osp.join(UPSTREAM_SEG, theirs), 'mmseg')
    num_classes = ours.decode_head.num_classes
    batch = seg_batch(side, side, num_classes)
    for model in (upstream, ours):
        model.eval()
    with torch.no_grad():
        inputs = upstream.data_preprocessor(batch, False)['inputs']
        ref = upstream.encode_decode(inputs, [dict(img_shape=(side, side))])
        got = ours.encode_decode(inputs, [dict(img_shape=(side, side))])
        assert_close(f'{name}: segmentation logits', got, ref, atol=1e-4, rtol=1e-4)
        if name in FULL:
            set_fast_inference(ours, True)
            fast = ours.encode_decode(inputs, [dict(img_shape=(side, side))])
            set_fast_inference(ours, False)
            assert_close(f'{name}: segmentation logits (fast path)', fast, ref, atol=2e-4,
                         rtol=2e-4)
    if name in FULL:
        train_batch = seg_batch(side, side, num_classes, num_images=2, seed=5)
        assert_losses_close(losses_of(ours, train_batch), losses_of(upstream, train_batch))
