"""ConvNeXt (V1 and V2) as an MMEngine backbone for classification, detection and segmentation.

State-dict names follow the official dense backbone (``downsample_layers``, ``stages``,
``norm{i}``), so official detection/segmentation checkpoints load unchanged and other formats
go through :func:`backbones.convert_checkpoint`.
"""
import math
from typing import Iterator, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from backbones.registry import register_model
from .base import DECAY_TYPES, Backbone, drop_path_rates
from .layers import ConvNeXtBlock, LayerNorm2d
from .presets import CONVNEXT_ARCHS


def convnext_layer_id(param_name: str,
                      depths: Sequence[int],
                      num_layers: int,
                      decay_type: str = 'layer_wise') -> int:
    """Layer id of a ConvNeXt backbone parameter for layer-wise learning-rate decay.

    The official mapping (the official code's mapping) with the grouping of stage 2 derived from the
    real depth instead of hard-coded threes; for tiny (``num_layers=6``) and the 27-block
    presets (``num_layers=12``) it is the official mapping exactly.

    ``layer_wise``: stem (``downsample_layers.0``) -> 0; stage 0 -> 1; ``downsample_layers.1``
    and stage 1 -> 2; ``downsample_layers.2`` -> 3; stage 2 block b -> 3 + b // g with
    g = ceil(depths[2] / (num_layers - 3)); ``downsample_layers.3`` and stage 3 -> num_layers.

    ``stage_wise``: every downsampling layer -> 0; stage i -> i + 1.

    Anything else, including the output norms ``norm{i}``, gets ``num_layers + 1`` (the full
    learning rate). That is what the official constructors do in both modes (their name test
    only knows ``downsample_layers`` and ``stages``), and it suits the output norms: no
    classification checkpoint provides them, so they start from scratch like the heads.

    Args:
        param_name: Parameter name relative to the backbone, e.g. ``'stages.2.4.pwconv1.weight'``.
        depths: Blocks per stage (four stages).
        num_layers: ``N`` of the decay schedule; ids run from 0 to ``N + 1``.
        decay_type: ``'layer_wise'`` or ``'stage_wise'``.

    Returns:
        The layer id; the learning-rate scale is ``decay_rate ** (num_layers + 1 - id)``.

    Raises:
        ValueError: Unknown ``decay_type``, not four stages, or ``num_layers < 4``.
    """
    if decay_type not in DECAY_TYPES:
        raise ValueError(f'decay_type must be one of {DECAY_TYPES}, got {decay_type!r}')
    if len(depths) != 4:
        raise ValueError(f'the ConvNeXt layer-id mapping needs 4 stages, got depths {depths}')
    if num_layers < 4:
        raise ValueError(f'num_layers must be >= 4 for ConvNeXt (stem, stages 0-1, stage 2 and '
                         f'stage 3 need distinct ids), got {num_layers}')
    parts = param_name.split('.')
    if parts[0] == 'downsample_layers' and len(parts) > 1 and parts[1].isdigit():
        if decay_type == 'stage_wise':
            return 0
        return (0, 2, 3, num_layers)[int(parts[1])]
    if parts[0] == 'stages' and len(parts) > 2 and parts[1].isdigit() and parts[2].isdigit():
        stage, block = int(parts[1]), int(parts[2])
        if decay_type == 'stage_wise':
            return stage + 1
        if stage == 2:
            group = math.ceil(depths[2] / (num_layers - 3))
            return 3 + block // group
        return (1, 2, None, num_layers)[stage]
    return num_layers + 1


class StagedBackbone(Backbone):
    """A :class:`Backbone` laid out as ConvNeXt is: ``downsample_layers[i]`` (the stem for
    ``i = 0``) then ``stages[i]``, four times, with ConvNeXt's layer-decay mapping over the real
    ``depths`` (:func:`convnext_layer_id`). Subclasses build those modules."""

    def stage_outputs(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
            yield x

    def stage_modules(self, stage: int) -> List[nn.Module]:
        return [self.downsample_layers[stage], self.stages[stage]]

    def get_layer_id(self,
                     param_name: str,
                     num_layers: int,
                     decay_type: str = 'layer_wise') -> int:
        """Layer id of a parameter for layer-wise lr decay (see :func:`convnext_layer_id`):
        the stem 0, then increasing by stage and block, anything else ``num_layers + 1``.

        Args:
            param_name: Parameter name relative to this backbone.
            num_layers: ``N`` of the decay schedule (6 for tiny, 12 for the 27-block presets
                in the official configs).
            decay_type: ``'layer_wise'`` or ``'stage_wise'``.

        Returns:
            An id in ``[0, num_layers + 1]``.
        """
        return convnext_layer_id(param_name, self.depths, num_layers, decay_type)


@register_model()
class ConvNeXt(StagedBackbone):
    """ConvNeXt backbone (`A ConvNet for the 2020s <https://arxiv.org/abs/2201.03545>`_ and
    `ConvNeXt V2 <https://arxiv.org/abs/2301.00808>`_), returning multi-scale NCHW features.

    Stem: 4x4 conv stride 4 + LayerNorm; between stages: LayerNorm + 2x2 conv stride 2; each
    stage is a run of :class:`ConvNeXtBlock`. Every stage in ``out_indices`` gets its own output
    LayerNorm ``norm{i}``, as in the official detection/segmentation backbone. The rest of the
    contract (frozen stages, init, outputs, layout) is :class:`backbones.models.base.Backbone`'s.

    Args:
        arch: A preset name (``atto``, ``femto``, ``pico``, ``nano``, ``tiny``, ``small``,
            ``base``, ``large``, ``xlarge``, ``huge``) or a dict with ``depths`` and ``dims``
            (four entries each).
        in_channels: Number of input image channels.
        out_indices: Stages whose (normalised) outputs :meth:`forward` returns; negative
            indices count from the last stage.
        drop_path_rate: Stochastic depth rate of the last block; the rates rise linearly from
            0 over all blocks of all stages.
        layer_scale_init_value: Initial layer-scale value; ``None`` or ``0`` disables layer
            scale. Ignored (layer scale off) when ``use_grn`` is True.
        use_grn: Build ConvNeXt V2 blocks (GRN after GELU, no layer scale).
        frozen_stages: Freeze the stem and stages ``0..frozen_stages`` with their output norms;
            -1 freezes nothing.
        with_cp: Activation checkpointing in every block (saves memory, costs time).
        init_cfg: MMEngine init config. ``dict(type='Pretrained', checkpoint=PATH)`` accepts any
            format :func:`backbones.convert_checkpoint` knows (official, timm, mmpretrain, ours,
            whole classifiers or detectors with ``backbone.`` keys); optional keys ``prefix``
            (keep only keys under it), ``map_location`` and ``use_ema``.
        fast_inference: In eval mode, take the inference fast path: layer scale (and GRN's
            bias) folded into ``pwconv2``, fused oneDNN linear + GELU and linear + residual
            kernels on CPU. Outputs equal the plain path to float rounding (tested to 1e-4).
            Training is unchanged. Also switchable later with :meth:`set_fast_inference`.
    """

    ARCHS = CONVNEXT_ARCHS
    ARCH_KEYS = ('depths', 'dims')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: Optional[float] = 1e-6,
                 use_grn: bool = False,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 fast_inference: bool = False) -> None:
        super().__init__(out_indices, frozen_stages, num_stages=4, init_cfg=init_cfg)
        settings = self.resolve_arch(arch)
        self.depths = tuple(int(d) for d in settings['depths'])
        self.dims = tuple(int(d) for d in settings['dims'])
        if len(self.depths) != 4 or len(self.dims) != 4:
            raise ValueError(f'ConvNeXt needs 4 stages: got depths {self.depths} and dims '
                             f'{self.dims}')
        self.use_grn = use_grn
        # V2 replaced layer scale by GRN; the official V2 blocks have no gamma.
        self.layer_scale_init_value = None if use_grn else layer_scale_init_value

        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(
            nn.Sequential(
                nn.Conv2d(in_channels, self.dims[0], kernel_size=4, stride=4),
                LayerNorm2d(self.dims[0])))
        for i in range(1, 4):
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(self.dims[i - 1]),
                    nn.Conv2d(self.dims[i - 1], self.dims[i], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList()
        for dim, rates in zip(self.dims, drop_path_rates(self.depths, drop_path_rate)):
            self.stages.append(
                nn.Sequential(*[
                    ConvNeXtBlock(
                        dim,
                        drop_path=rate,
                        layer_scale_init_value=self.layer_scale_init_value,
                        use_grn=use_grn,
                        with_cp=with_cp,
                        fast_inference=fast_inference) for rate in rates
                ]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(self.dims[i]))
        self._freeze_stages()
