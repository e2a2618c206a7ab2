"""What only a CUDA GPU can show: mmcv's CUDA ops against their CPU results, AMP (fp16)
training steps of the paper's detectors and segmentor, SyncBN under DDP with NCCL and the
eval fast path on CUDA.

Every test here carries the ``gpu`` marker; tests/conftest.py skips them, with the reason,
where torch sees no CUDA device (CI). ``tools/gpu/gpu_check.sh`` runs them on a GPU machine.
"""
import json
import math
import os.path as osp
import sys

import pytest
import torch
from conftest import REPO, run_tool

import backbones  # noqa: F401  (registers our models; guards roi_align's input layout)

pytestmark = pytest.mark.gpu

DET_SIZE = (800, 1333)  # the paper's COCO training resolution (short side 800, long <= 1333)
SEG_SIZE = (512, 512)  # the paper's ADE20K crop


@pytest.fixture(autouse=True)
def exact_fp32():
    """TF32 would make fp32 CUDA results differ from CPU ones by ~1e-3; compare true fp32."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def random_rois(n, height, width, stride, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = height * stride, width * stride
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.8, h * 0.8])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5]) + 2
    idx = torch.randint(0, batch, (n, 1), generator=g).float()
    return torch.cat([idx, xy, xy + wh], dim=1)


@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
@pytest.mark.parametrize('aligned', [True, False])
def test_cuda_roi_align_equals_cpu(layout, aligned):
    from mmcv.ops import roi_align
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 256, 50, 84, generator=g)  # an FPN level of an 800x1333 batch, /16
    rois = random_rois(300, 50, 84, 16, batch=2)
    expected = roi_align(feats, rois, (7, 7), 1 / 16, 2, 'avg', aligned)
    x = feats.cuda()
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
        assert not x.is_contiguous()
    got = roi_align(x, rois.cuda(), (7, 7), 1 / 16, 2, 'avg', aligned)
    assert got.device == x.device
    torch.testing.assert_close(got.cpu(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('layout', ['contiguous', 'strided'])
def test_cuda_nms_equals_cpu(layout):
    from mmcv.ops import batched_nms, nms
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2000, 2, generator=g) * 600
    boxes = torch.cat([xy, xy + torch.rand(2000, 2, generator=g) * 120 + 4], dim=1)
    scores = torch.rand(2000, generator=g)
    labels = torch.randint(0, 5, (2000, ), generator=g)
    cpu_dets, cpu_keep = nms(boxes, scores, 0.5)
    b = boxes.cuda()
    if layout == 'strided':  # a column slice of a wider tensor: not contiguous
        b = torch.cat([b, torch.zeros_like(b)], dim=1)[:, :4]
        assert not b.is_contiguous()
    dets, keep = nms(b, scores.cuda(), 0.5)
    assert 0 < len(keep) < len(boxes)
    assert torch.equal(keep.cpu(), cpu_keep)
    torch.testing.assert_close(dets.cpu(), cpu_dets)
    cfg = dict(type='nms', iou_threshold=0.6)
    _, keep_b = batched_nms(b, scores.cuda(), labels.cuda(), cfg)
    _, cpu_keep_b = batched_nms(boxes, scores, labels, cfg)
    assert torch.equal(keep_b.cpu(), cpu_keep_b)


def build_train_model(config):
    """The config's model and optimizer wrapper (AmpOptimWrapper, layer decay) on the GPU,
    randomly initialised (no checkpoint), SyncBN as BN as on one process."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from backbones.analysis.complexity import build_model, load_config
    cfg = load_config(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    model.init_weights()
    model = model.cuda().train()
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim_wrapper


@pytest.mark.parametrize('config,size', [
    ('configs/detection/mask_rcnn_convnext_t_coco.py', DET_SIZE),
    ('configs/detection/cascade_convnext_t_coco.py', DET_SIZE),
    ('configs/segmentation/upernet_convnext_t_ade20k.py', SEG_SIZE),
], ids=['mask_rcnn', 'cascade_mask_rcnn', 'upernet'])
def test_amp_training_step(config, size):
    from mmengine.optim import AmpOptimWrapper

    from backbones.analysis.synthetic import synthetic_batch
    torch.manual_seed(0)
    model, optim_wrapper = build_train_model(config)
    assert isinstance(optim_wrapper, AmpOptimWrapper)
    dtypes = []
    hook = model.backbone.stages[0].register_forward_hook(
        lambda mod, inp, out: dtypes.append(out.dtype))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):  # the second step starts from AdamW state
        data = synthetic_batch(model, 2, size, preprocess=False)
        log_vars = model.train_step(data, optim_wrapper)
    hook.remove()
    peak = torch.cuda.max_memory_allocated() / 2**30
    loss = float(log_vars['loss'])
    print(f'{osp.basename(config)}: loss {loss:.3f}, peak {peak:.2f} GiB')
    assert dtypes and all(d == torch.float16 for d in dtypes), dtypes  # autocast is on
    assert math.isfinite(loss)
    changed = [n for n, p in model.named_parameters() if n in before
               and not torch.equal(p.detach(), before[n])]
    assert any(n.startswith('backbone.') for n in changed)
    assert any(not n.startswith(('backbone.', 'neck.')) for n in changed)  # the heads too
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    assert optim_wrapper.loss_scaler.get_scale() > 0


def test_syncbn_kept_under_one_process_ddp_with_nccl(tmp_path):
    out = tmp_path / 'syncbn.json'
    run_tool([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
              '1', osp.join(REPO, 'tests', 'data', 'gpu_syncbn_ddp.py'), str(out)], timeout=300)
    result = json.loads(out.read_text())
    assert result['backend'] == 'nccl' and result['world_size'] == 1
    assert result['wrapper'] == 'MMDistributedDataParallel'
    assert result['syncbn_modules'] > 0 and result['bn_modules'] == 0
    assert result['loss_finite'] and result['running_mean_moved']


@pytest.mark.parametrize('channels_last', [False, True], ids=['nchw', 'channels_last'])
def test_eval_fast_path_on_cuda_equals_plain_path(channels_last):
    from backbones.models.convnext import ConvNeXt
    torch.manual_seed(0)
    model = ConvNeXt('tiny', out_indices=(0, 1, 2, 3)).cuda().eval()
    with torch.no_grad():
        for p in model.parameters():  # layer scale and norms away from their init
            p.add_(torch.randn_like(p) * 0.2)
    x = torch.randn(4, 3, 224, 224).cuda()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        plain = model(x)
        model.set_fast_inference(True)
        fast = model(x)
    for a, b in zip(plain, fast):
        assert b.device == x.device and a.shape == b.shape
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
