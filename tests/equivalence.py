"""Helpers for tests that compare two models output by output: build a pair from configs, feed
both the same data, and fail naming the tensor and the size of the difference."""
import copy
import logging
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample


def build_model(cfg: Config, scope: str, seed: int = 0) -> torch.nn.Module:
    """Build ``cfg.model`` in ``scope`` with seeded default init (no pretrained files), SyncBN
    as BN (one process), no stochastic depth (its RNG use differs between implementations)."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)
    model_cfg.backbone.drop_path_rate = 0.
    text = repr(model_cfg)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(_sync_bn_to_bn(model_cfg))
    assert 'SyncBN' not in repr(model), text
    torch.manual_seed(seed)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs one paragraph per parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def _sync_bn_to_bn(node):
    if isinstance(node, dict):
        return type(node)({k: ('BN' if k == 'type' and v == 'SyncBN' else _sync_bn_to_bn(v))
                           for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(_sync_bn_to_bn(v) for v in node)
    return node


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.


def assert_close(name: str, ours: torch.Tensor, ref: torch.Tensor, atol: float,
                 rtol: float = 0.) -> None:
    """``ours`` equals ``ref`` within ``atol + rtol * |ref|``; the error names the tensor."""
    assert ours.shape == ref.shape, f'{name}: shape {tuple(ours.shape)} != {tuple(ref.shape)}'
    bound = atol + rtol * ref.double().abs()
    excess = (ours.double() - ref.double()).abs() - bound
    if excess.numel() and excess.max() > 0:
        raise AssertionError(f'{name}: differs by up to {max_diff(ours, ref):.3g} '
                             f'(allowed {atol:g} + {rtol:g} x |value|; '
                             f'{int((excess > 0).sum())} of {excess.numel()} elements over)')


def assert_losses_close(ours: Dict, ref: Dict, rtol: float = 1e-3, atol: float = 1e-6,
                        accuracy_steps: Optional[Dict[str, float]] = None) -> None:
    """Same loss names and values (lists of per-level losses are compared entry by entry).

    ``accuracy_steps`` maps an accuracy entry (mmdet's ``acc``: the % of sampled RoIs whose
    argmax is right) to the share of one sample: such an entry may differ by that much, since a
    rounding-level change flips the argmax of a near tie among random heads' logits. It is a
    logged metric, not a loss (MMEngine sums only the entries named ``loss``).
    """
    assert set(ours) == set(ref), f'loss names differ: {sorted(ours)} vs {sorted(ref)}'
    accuracy_steps = accuracy_steps or {}
    for name in sorted(ref):
        values_ours, values_ref = ours[name], ref[name]
        if torch.is_tensor(values_ref):
            values_ours, values_ref = [values_ours], [values_ref]
        for i, (a, b) in enumerate(zip(values_ours, values_ref)):
            if name in accuracy_steps:
                assert 'loss' not in name, f'{name} is a loss, not an accuracy'
                diff = float((a.detach() - b.detach()).abs().max())
                assert diff <= accuracy_steps[name] * 1.0001, (
                    f'{name}[{i}]: differs by {diff:.4g}, more than one sample '
                    f'({accuracy_steps[name]:.4g})')
                continue
            assert_close(f'loss {name}[{i}]', a.detach(), b.detach(), atol=atol, rtol=rtol)


def det_batch(height: int, width: int, num_images: int = 1, with_gt: bool = False,
              num_classes: int = 80, seed: int = 0) -> dict:
    """A detector's input batch as a data loader gives it: uint8 CHW images and data samples
    (with boxes, labels and bitmap masks when ``with_gt``)."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.)))
        if with_gt:
            boxes, masks = [], np.zeros((3, height, width), np.uint8)
            for k in range(3):
                x0, y0 = (torch.rand(2, generator=gen) * torch.tensor([width, height]) * 0.6)
                w, h = torch.rand(2, generator=gen) * torch.tensor([width, height]) * 0.3 + 16
                x1, y1 = min(float(x0 + w), width - 1), min(float(y0 + h), height - 1)
                boxes.append([float(x0), float(y0), x1, y1])
                masks[k, int(y0):int(y1), int(x0):int(x1)] = 1
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor(boxes), labels=torch.tensor([1, 5, 17]) % num_classes,
                masks=BitmapMasks(masks, height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(height: int, width: int, num_classes: int, num_images: int = 1,
              seed: int = 0) -> dict:
    """A segmentor's input batch: uint8 CHW images and data samples with a label map."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        labels = torch.randint(0, num_classes, (1, height // 8, width // 8), generator=gen)
        labels = labels.repeat_interleave(8, 1).repeat_interleave(8, 2)
        sample = SegDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def losses_of(model: torch.nn.Module, batch: dict, seed: int = 0) -> Dict:
    """The loss dict of one training forward pass (samplers and dropout seeded)."""
    model.train()
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    torch.manual_seed(seed)
    return model(**data, mode='loss')


def predictions_of(model: torch.nn.Module, batch: dict) -> List:
    """Eval-mode predictions (data samples) of ``batch``."""
    model.eval()
    with torch.no_grad():
        return model.test_step(copy.deepcopy(batch))


def assert_same_detections(name: str, ours: InstanceData, ref: InstanceData,
                           box_atol: float = 1e-2, score_atol: float = 1e-4,
                           mask_tol: float = 1e-3) -> None:
    """Same number of detections, and each reference detection has one of ours with the same
    label, box (to ``box_atol`` pixels), score and mask (at most ``mask_tol`` of its pixels
    different). Matching, not index order: near-equal scores may swap places."""
    assert len(ours) == len(ref), f'{name}: {len(ours)} detections, reference {len(ref)}'
    if not len(ref):
        return
    assert_close(f'{name} sorted scores', ours.scores.sort().values, ref.scores.sort().values,
                 atol=score_atol)
    dist = torch.cdist(ref.bboxes.double(), ours.bboxes.double(), p=float('inf'))
    dist[ref.labels[:, None] != ours.labels[None, :]] = float('inf')
    nearest = dist.min(1)
    worst = nearest.values.max().item()
    assert worst <= box_atol, (f'{name}: a reference box has no box of ours within '
                               f'{box_atol} px with its label (worst {worst:.3g} px)')
    assert_close(f'{name} matched scores', ours.scores[nearest.indices], ref.scores,
                 atol=score_atol)
    if 'masks' in ref:
        masks_ours = torch.as_tensor(ours.masks)[nearest.indices]
        masks_ref = torch.as_tensor(ref.masks)
        wrong = (masks_ours != masks_ref).flatten(1).float().mean(1).max().item()
        assert wrong <= mask_tol, f'{name}: masks differ in {wrong:.2%} of pixels'


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module,
                 convert: Optional[Callable] = None) -> None:
    """Load ``src``'s weights into ``dst`` (``convert`` maps the state dict), every key
    matched."""
    state = src.state_dict()
    if convert is not None:
        state = convert(state)
    result = dst.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
