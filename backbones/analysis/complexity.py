"""Parameters and FLOPs of any classification, detection or segmentation config, counted the
way the paper counts them: ``mmengine.analysis.FlopAnalyzer``, one fused
multiply-add = one FLOP, the model in eval mode on one synthetic image.

What the forward pass covers, per task:

* classification: ``model(inputs, mode='tensor')`` (backbone, pooling, head: the logits);
* segmentation: ``model(inputs, mode='tensor')`` (backbone + decode head, no auxiliary head);
* two-stage detection: backbone + neck + RPN head convs, then a fixed set of ``1000`` boxes
  through every box head and the first ``100`` through every mask head. That is the dummy
  forward of MMDetection 2.x's ``get_flops.py`` the paper used (1000 random proposals): it
  makes the count independent of NMS on random weights, so it is the same on every run;
* other detectors: ``model(inputs, mode='tensor')``.
"""
import dataclasses
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.model import BaseModel, revert_sync_batchnorm
from mmengine.registry import MODELS, DefaultScope

from backbones.models import ImageClassifier
from .paper import paper_row

#: Tasks, inferred from a config's ``default_scope``.
TASK_OF_SCOPE = {'mmdet': 'detection', 'mmseg': 'segmentation'}

#: The paper's counting conventions for two-stage detectors.
NUM_PROPOSALS = 1000
NUM_MASK_ROIS = 100


@dataclasses.dataclass
class Complexity:
    """Size and cost of a model.

    Args:
        params: Number of parameters (all of them, trainable or not).
        flops: FLOPs of one forward pass (multiply-add = 1), ``None`` when not counted.
        shape: Input ``(H, W)`` the FLOPs were counted at.
    """

    params: int
    flops: Optional[int]
    shape: Tuple[int, int]

    @property
    def params_m(self) -> float:
        """Parameters in millions."""
        return self.params / 1e6

    @property
    def gflops(self) -> Optional[float]:
        """FLOPs in units of 1e9, ``None`` when not counted."""
        return None if self.flops is None else self.flops / 1e9


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model`` (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, inputs: Union[torch.Tensor, Tuple[torch.Tensor, ...]]) -> int:
    """FLOPs of ``model(*inputs)`` with ``mmengine.analysis.FlopAnalyzer`` (no gradients).

    Ops the analyzer has no formula for (RoIAlign, NMS, element-wise ops) count 0, as in the
    paper's tools.
    """
    inputs = inputs if isinstance(inputs, tuple) else (inputs, )
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analyzer.total())


def task_of(cfg: Config) -> str:
    """``'classification'``, ``'detection'`` or ``'segmentation'``, from ``default_scope``."""
    return TASK_OF_SCOPE.get(cfg.get('default_scope'), 'classification')


def load_config(config: Union[str, Config]) -> Config:
    """Read a config file (or pass a :class:`Config` through), with a clear error."""
    if isinstance(config, Config):
        return config
    try:
        cfg = Config.fromfile(config)
    except FileNotFoundError:
        raise FileNotFoundError(f'config file not found: {config}') from None
    if 'model' not in cfg:
        raise KeyError(f'{config}: no `model` in the config')
    return cfg


def build_model(cfg: Config, device: Union[str, torch.device] = 'cpu') -> nn.Module:
    """Build ``cfg.model`` in the config's default scope, in eval mode, without loading any
    pretrained weights (``init_weights`` is not called) and with SyncBN turned into BN.

    Args:
        cfg: A full config (``default_scope`` picks the registry: mmdet, mmseg, mmengine).
        device: ``'meta'`` builds without memory or init (enough to count parameters; some
            models, e.g. Swin, cannot be built there).
    """
    scope = cfg.get('default_scope', 'mmengine')
    with DefaultScope.overwrite_default_scope(scope), torch.device(device):
        model = MODELS.build(cfg.model)
    return revert_sync_batchnorm(model).eval()


def default_shape(cfg: Config) -> Tuple[int, int]:
    """Input ``(H, W)`` for FLOPs: the paper's for the config's row when it has one, else the
    paper's convention for the task (detection 800x1280; segmentation crop x 4 crop, from
    ``model.data_preprocessor.size``, else 512x2048; classification 224x224)."""
    row = paper_row(cfg.filename) if cfg.filename else None
    if row is not None:
        return tuple(row['flops_shape'])
    task = task_of(cfg)
    if task == 'detection':
        return (800, 1280)
    if task == 'segmentation':
        size = (cfg.model.get('data_preprocessor') or {}).get('size')
        return (int(size[0]), 4 * int(size[1])) if size else (512, 2048)
    return (224, 224)


class TensorForward(nn.Module):
    """``model(x, mode='tensor')`` as a one-argument module (what FlopAnalyzer traces)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, mode='tensor')


class TwoStageFlopsForward(nn.Module):
    """A two-stage detector's network on fixed proposals (see the module docstring).

    Args:
        detector: An MMDetection two-stage detector (``extract_feat``, ``rpn_head``,
            ``roi_head``; a cascade head has ``num_stages``).
        num_proposals: Boxes through every box head.
        num_mask_rois: Of those, boxes through every mask head.
    """

    def __init__(self, detector: nn.Module, num_proposals: int = NUM_PROPOSALS,
                 num_mask_rois: int = NUM_MASK_ROIS) -> None:
        super().__init__()
        self.detector = detector
        self.num_proposals = num_proposals
        self.num_mask_rois = num_mask_rois

    def _rois(self, height: int, width: int) -> torch.Tensor:
        # Seeded boxes inside the image, as (batch index, x1, y1, x2, y2).
        gen = torch.Generator().manual_seed(0)
        xy = torch.rand(self.num_proposals, 2, generator=gen) * torch.tensor([width, height])
        wh = torch.rand(self.num_proposals, 2, generator=gen) * torch.tensor([width, height]) / 2
        boxes = torch.cat([xy, torch.minimum(xy + wh + 1, torch.tensor([width, height]))], 1)
        return torch.cat([torch.zeros(self.num_proposals, 1), boxes], 1)

    def forward(self, x: torch.Tensor):
        det = self.detector
        feats = det.extract_feat(x)
        outs = [det.rpn_head(feats)]
        rois = self._rois(x.shape[-2], x.shape[-1]).to(x.device)
        head = det.roi_head
        stages = range(head.num_stages) if hasattr(head, 'num_stages') else [None]
        # Cascade heads take the stage index first; the standard head has no such argument.
        args = [() if s is None else (s, ) for s in stages]
        if head.with_bbox:
            for a in args:
                res = head._bbox_forward(*a, feats, rois)
                outs.append((res['cls_score'], res['bbox_pred']))
        if head.with_mask:
            mask_rois = rois[:self.num_mask_rois]
            for a in args:
                outs.append(head._mask_forward(*a, feats, mask_rois)['mask_preds'])
        return outs


def flops_module(model: nn.Module, task: str) -> nn.Module:
    """The module whose one-tensor forward FlopAnalyzer counts for ``model`` of ``task``: a plain
    ``nn.Module`` is counted as it is; an MMEngine ``BaseModel`` in ``mode='tensor'``."""
    if task == 'detection' and all(hasattr(model, a) for a in ('rpn_head', 'roi_head')):
        return TwoStageFlopsForward(model)
    return TensorForward(model) if isinstance(model, BaseModel) else model


def model_complexity(model: nn.Module, task: str, shape: Optional[Sequence[int]] = (224, 224),
                     flops: bool = True) -> Complexity:
    """Params and FLOPs of a built model (eval mode is set here).

    Args:
        model: The full model: an MMEngine ``BaseModel`` taking ``mode='tensor'`` (classifier,
            detector or segmentor) or a plain module called on the image.
        task: ``'classification'``, ``'detection'`` or ``'segmentation'``.
        shape: Input ``(H, W)``.
        flops: Count FLOPs (runs the model once on a zero image on the CPU).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f'shape must be (H, W) with positive sides, got {shape}')
    params = count_params(model)
    count = None
    if flops:
        model.eval()
        count = count_flops(flops_module(model, task), torch.zeros(1, 3, *shape))
    return Complexity(params, count, shape)


def config_complexity(config: Union[str, Config], shape: Optional[Sequence[int]] = None,
                      flops: bool = True) -> Complexity:
    """Params and FLOPs of the full model of a config.

    Args:
        config: Config file or :class:`Config` (any task; ``default_scope`` picks it).
        shape: Input ``(H, W)``; ``None``: :func:`default_shape` (the paper's resolution).
        flops: Count FLOPs; without, the model is built on the meta device when it can be
            (no memory, seconds even for XL).
    """
    cfg = load_config(config)
    task = task_of(cfg)
    shape = tuple(shape) if shape else default_shape(cfg)
    model = None
    if not flops:
        try:
            model = build_model(cfg, 'meta')
        except Exception:  # e.g. Swin calls .item() while building: build it for real
            model = None
    if model is None:
        model = build_model(cfg, 'cpu')
    return model_complexity(model, task, shape, flops)


def paper_classifier(backbone: dict, num_classes: int = 1000) -> ImageClassifier:
    """The ImageNet classifier of a backbone as the paper counts it: the backbone with only its
    last output (``out_indices=(-1,)``), global average pooling, the final LayerNorm when the
    backbone has one (``final_norm``) and a linear head.

    Its one unused dense output norm adds ``2 x num_features`` parameters to the paper's count
    (1536 of 28.6M for ConvNeXt-T).

    Args:
        backbone: Backbone config (``type`` and its arguments).
        num_classes: Classes of the head.
    """
    return ImageClassifier(backbone=dict(backbone, out_indices=(-1, )),
                           head=dict(num_classes=num_classes))


def preset_complexity(arch: str, isotropic: bool = False, use_grn: bool = False,
                      shape: Sequence[int] = (224, 224), flops: bool = True) -> Complexity:
    """Params and FLOPs of a preset's 1000-class ImageNet classifier (the paper's Table 1).

    Args:
        arch: Preset name (``'tiny'``... of ``CONVNEXT_ARCHS`` or ``ISOTROPIC_ARCHS``).
        isotropic: An isotropic preset.
        use_grn: ConvNeXt V2 blocks (GRN, no layer scale); the paper's figures for
            atto/femto/pico/nano/huge are V2's.
        shape: Input ``(H, W)``.
        flops: Count FLOPs (else the model is built on the meta device).
    """
    backbone = (dict(type='ConvNeXtIsotropic', arch=arch) if isotropic else
                dict(type='ConvNeXt', arch=arch, use_grn=use_grn))
    with torch.device('cpu' if flops else 'meta'):
        model = paper_classifier(backbone)
    return model_complexity(model, 'classification', shape, flops)


def roadmap_gflops(step: str, kernel_size: Optional[int] = None, img_size: int = 224) -> float:
    """GFLOPs of a roadmap step's ImageNet classifier (:func:`paper_classifier`) in eval mode,
    counted as the paper's Table 10 counts them (docs/roadmap.md).

    Args:
        step: One of :data:`backbones.ROADMAP_STEPS`.
        kernel_size: Kernel size of the spatial conv; ``None`` for the step's default.
        img_size: Side of the square input.

    Returns:
        The FLOPs in units of 1e9.
    """
    model = paper_classifier(dict(type='ModernizedResNet', step=step, kernel_size=kernel_size))
    return model_complexity(model, 'classification', (img_size, img_size)).gflops


__all__ = [
    'Complexity', 'count_params', 'count_flops', 'task_of', 'load_config', 'build_model',
    'default_shape', 'TensorForward', 'TwoStageFlopsForward', 'flops_module', 'model_complexity',
    'config_complexity', 'paper_classifier', 'preset_complexity', 'roadmap_gflops',
    'NUM_PROPOSALS', 'NUM_MASK_ROIS'
]
