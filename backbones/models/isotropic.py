"""Isotropic ConvNeXt (paper section 3.3): a 16x16 patchify stem and one resolution throughout.

State-dict names follow the official ``ConvNeXtIsotropic`` (``stem``, ``blocks.{j}``); the
dense-use output norms are ``norm{j}`` for the blocks in ``out_indices``.
"""
import math
from typing import Iterator, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from backbones.registry import register_model
from .base import DECAY_TYPES, Backbone, drop_path_rates
from .layers import ConvNeXtBlock, LayerNorm2d
from .presets import ISOTROPIC_ARCHS


def isotropic_layer_id(param_name: str,
                       depth: int,
                       num_layers: int,
                       decay_type: str = 'layer_wise') -> int:
    """Layer id of an isotropic ConvNeXt parameter for layer-wise learning-rate decay.

    There is no official mapping; this one mirrors the dense rule. ``layer_wise``: stem -> 0,
    block j -> 1 + j // g with g = ceil(depth / num_layers) (so ``num_layers = depth`` gives
    each block its own id). ``stage_wise``: stem -> 0, the blocks in four equal groups -> 1..4.
    Anything else (output norms included) -> ``num_layers + 1``.

    Args:
        param_name: Parameter name relative to the backbone, e.g. ``'blocks.7.dwconv.weight'``.
        depth: Number of blocks.
        num_layers: ``N`` of the decay schedule; ids run from 0 to ``N + 1``.
        decay_type: ``'layer_wise'`` or ``'stage_wise'``.

    Returns:
        The layer id; the learning-rate scale is ``decay_rate ** (num_layers + 1 - id)``.

    Raises:
        ValueError: Unknown ``decay_type`` or too small ``num_layers``.
    """
    if decay_type not in DECAY_TYPES:
        raise ValueError(f'decay_type must be one of {DECAY_TYPES}, got {decay_type!r}')
    if num_layers < (4 if decay_type == 'stage_wise' else 1):
        raise ValueError(f'num_layers {num_layers} is too small for {decay_type} decay')
    parts = param_name.split('.')
    if parts[0] == 'stem':
        return 0
    if parts[0] == 'blocks' and len(parts) > 1 and parts[1].isdigit():
        block = int(parts[1])
        if decay_type == 'stage_wise':
            return 1 + 4 * block // depth
        return 1 + block // math.ceil(depth / num_layers)
    return num_layers + 1


@register_model()
class ConvNeXtIsotropic(Backbone):
    """Isotropic ConvNeXt backbone: ``stem`` (16x16 conv, stride 16) then ``blocks``.

    Its stages, in the sense of :class:`backbones.models.base.Backbone`, are the blocks: stage
    ``j`` is block ``j``, all of them ``dim`` wide at stride 16.

    Args:
        arch: ``'small'`` (384 x 18), ``'base'`` (768 x 18), ``'large'`` (1024 x 36), or a dict
            with ``depth`` and ``dim`` (and optionally ``layer_scale_init_value``).
        in_channels: Number of input image channels.
        out_indices: Blocks whose (normalised) outputs :meth:`forward` returns, as stride-16
            NCHW maps; negative indices count from the end. None takes four evenly spaced
            blocks ending with the last (e.g. 3, 8, 12, 17 for 18 blocks).
        drop_path_rate: Stochastic depth rate of the last block (linear from 0).
        layer_scale_init_value: ``'arch'`` takes the preset's value (off for S and B, 1e-6
            for L, as the official models were trained); a float sets it; ``None`` or ``0``
            disables layer scale.
        with_cp: Activation checkpointing in every block.
        frozen_stages: Freeze the stem and blocks ``0..frozen_stages`` with their output norms;
            -1 freezes nothing.
        init_cfg: MMEngine init config; ``Pretrained`` accepts official isotropic checkpoints
            and ours (see :func:`backbones.convert_checkpoint`).
        fast_inference: Eval-mode fast path, as for :class:`backbones.models.convnext.ConvNeXt`.
    """

    ARCHS = ISOTROPIC_ARCHS
    ARCH_KEYS = ('depth', 'dim')

    def __init__(self,
                 arch: Union[str, dict] = 'small',
                 in_channels: int = 3,
                 out_indices: Optional[Union[int, Sequence[int]]] = None,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: Union[float, None, str] = 'arch',
                 with_cp: bool = False,
                 frozen_stages: int = -1,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 fast_inference: bool = False) -> None:
        settings = self.resolve_arch(arch)
        depth, dim = int(settings['depth']), int(settings['dim'])
        if out_indices is None:
            out_indices = sorted({max(0, depth * (k + 1) // 4 - 1) for k in range(4)})
        super().__init__(out_indices, frozen_stages, num_stages=depth, init_cfg=init_cfg)
        self.depth, self.dim = depth, dim
        self.dims = (dim, ) * depth
        if layer_scale_init_value == 'arch':
            layer_scale_init_value = settings.get('layer_scale_init_value')
        self.layer_scale_init_value = layer_scale_init_value

        self.stem = nn.Conv2d(in_channels, dim, kernel_size=16, stride=16)
        self.blocks = nn.Sequential(*[
            ConvNeXtBlock(
                dim,
                drop_path=rate,
                layer_scale_init_value=layer_scale_init_value,
                with_cp=with_cp,
                fast_inference=fast_inference)
            for rate in drop_path_rates([depth], drop_path_rate)[0]
        ])
        for j in self.out_indices:
            self.add_module(f'norm{j}', LayerNorm2d(dim))
        self._freeze_stages()

    def stage_outputs(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
            yield x

    def stage_modules(self, stage: int) -> List[nn.Module]:
        return ([self.stem] if stage == 0 else []) + [self.blocks[stage]]

    def get_layer_id(self, param_name: str, num_layers: int,
                     decay_type: str = 'layer_wise') -> int:
        """See :meth:`Backbone.get_layer_id`; the mapping is :func:`isotropic_layer_id`."""
        return isotropic_layer_id(param_name, self.depth, num_layers, decay_type)
