"""The ConvNeXt paper's modernisation roadmap (Table 10): ResNet-50 -> ConvNeXt-T, step by step.

:class:`ModernizedResNet` builds the network of one step of :data:`ROADMAP_STEPS`. A step is the
previous one plus one change; the changes are flags switched on from a fixed step index
(:func:`roadmap_spec`), so no step can drift from its predecessor. Why each step is built the
way it is (downsampling inside the blocks, what ``layer_norm`` and ``separate_downsampling``
hold) follows from matching the paper's GFLOPs row by row: docs/roadmap.md.
"""
import dataclasses
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from timm.layers import DropPath
from torch.nn.modules.batchnorm import _BatchNorm

from backbones.registry import register_model
from .base import drop_path_rates
from .convert import StateDict, unwrap_state_dict
from .convnext import StagedBackbone
from .layers import ConvNeXtBlock, LayerNorm2d, grads_in_param_strides
from .loading import trunc_normal_init

#: The rows of the paper's roadmap (the paper's Table 10), in order, from ResNet-50 to ConvNeXt-T.
ROADMAP_STEPS: Tuple[str, ...] = (
    'resnet50', 'enhanced_recipe', 'stage_ratio', 'patchify_stem', 'depthwise_conv', 'width',
    'inverted_bottleneck', 'move_up_dwconv', 'kernel_size', 'gelu', 'fewer_activations',
    'fewer_norms', 'layer_norm', 'separate_downsampling')


@dataclasses.dataclass(frozen=True)
class RoadmapSpec:
    """What the network of one roadmap step looks like (see :func:`roadmap_spec`).

    Args:
        depths: Blocks per stage.
        patchify_stem: 4x4 stride-4 conv stem instead of 7x7 conv + max pool.
        depthwise: The spatial conv is depthwise (groups = channels).
        base_width: Channels of the stem and the narrow width of stage 0.
        inverted: Inverted bottleneck (1x1 expands 4x) instead of ResNet's bottleneck.
        dw_first: The depthwise conv comes first in the block, on the narrow width.
        kernel_size: Default kernel size of the spatial conv.
        act_type: Default activation type.
        fewer_activations: One activation per block, between the two 1x1 convs.
        fewer_norms: One norm per block, after the depthwise conv.
        convnext_layout: LayerNorm ConvNeXt blocks and 2x2 stride-2 downsampling convs between
            stages (the ``layer_norm`` step; see the module docstring).
        resolution_norms: LN after the stem, before each downsampling conv, after global
            pooling (classification) and on each output (dense); layer scale on.
    """

    depths: Tuple[int, ...]
    patchify_stem: bool
    depthwise: bool
    base_width: int
    inverted: bool
    dw_first: bool
    kernel_size: int
    act_type: str
    fewer_activations: bool
    fewer_norms: bool
    convnext_layout: bool
    resolution_norms: bool


def roadmap_spec(step: str) -> RoadmapSpec:
    """Return the design of one roadmap step: every change up to ``step`` switched on.

    Args:
        step: One of :data:`ROADMAP_STEPS`.

    Returns:
        The step's :class:`RoadmapSpec`.

    Raises:
        ValueError: ``step`` is not in :data:`ROADMAP_STEPS`.
    """
    if step not in ROADMAP_STEPS:
        raise ValueError(f'unknown roadmap step {step!r}; valid steps, in order: '
                         f'{", ".join(ROADMAP_STEPS)}')
    index = ROADMAP_STEPS.index(step)

    def reached(name: str) -> bool:
        return index >= ROADMAP_STEPS.index(name)

    return RoadmapSpec(
        depths=(3, 3, 9, 3) if reached('stage_ratio') else (3, 4, 6, 3),
        patchify_stem=reached('patchify_stem'),
        depthwise=reached('depthwise_conv'),
        base_width=96 if reached('width') else 64,
        inverted=reached('inverted_bottleneck'),
        dw_first=reached('move_up_dwconv'),
        kernel_size=7 if reached('kernel_size') else 3,
        act_type='GELU' if reached('gelu') else 'ReLU',
        fewer_activations=reached('fewer_activations'),
        fewer_norms=reached('fewer_norms'),
        convnext_layout=reached('layer_norm'),
        resolution_norms=reached('separate_downsampling'))


class RoadmapBlock(nn.Module):
    """Residual block of the BatchNorm steps (``resnet50`` to ``fewer_norms``).

    Layout ``conv1 -> conv2 -> conv3``, each followed by its norm ``norm{1,2,3}``:

    * bottleneck (``dw_first=False``): 1x1 ``in -> mid``, k x k ``mid -> mid`` (strided, dense
      or depthwise), 1x1 ``mid -> out``;
    * depthwise conv moved up (``dw_first=True``): k x k depthwise ``in -> in`` (strided), 1x1
      ``in -> mid``, 1x1 ``mid -> out``.

    Activations after ``norm1``, ``norm2`` and the residual addition (ResNet), or only after
    ``conv2`` with ``fewer_activations``; ``fewer_norms`` keeps only ``norm1``. A projection
    ``shortcut`` (1x1 conv with the block's stride + norm) is used when the shape changes.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        mid_channels: Width between the convs (narrow for bottlenecks, wide for inverted ones).
        stride: Stride of the spatial conv and the shortcut.
        kernel_size: Kernel size of the spatial conv (odd).
        depthwise: Depthwise spatial conv (groups = its channels).
        dw_first: Spatial conv first, on ``in_channels``.
        fewer_activations: One activation, between ``conv2`` and ``conv3``.
        fewer_norms: One norm, after ``conv1``.
        norm_cfg: Norm layer config (mmcv ``build_norm_layer``).
        act_cfg: Activation config (mmcv ``build_activation_layer``).
        drop_path: Stochastic depth rate of the residual branch.
        layer_scale_init_value: Initial per-channel scale of the residual branch (``gamma``);
            ``None`` or 0 for none.
        with_cp: Recompute the block in the backward pass to save memory.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 mid_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 depthwise: bool = False,
                 dw_first: bool = False,
                 fewer_activations: bool = False,
                 fewer_norms: bool = False,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 drop_path: float = 0.,
                 layer_scale_init_value: Optional[float] = None,
                 with_cp: bool = False) -> None:
        super().__init__()
        if dw_first and not depthwise:
            raise ValueError('the spatial conv can only come first when it is depthwise')
        norm_cfg = norm_cfg or dict(type='BN')
        act_cfg = act_cfg or dict(type='ReLU')
        self.fewer_activations = fewer_activations
        self.with_cp = with_cp
        if dw_first:
            spatial = in_channels
            channels = [(in_channels, in_channels), (in_channels, mid_channels),
                        (mid_channels, out_channels)]
        else:
            spatial = mid_channels
            channels = [(in_channels, mid_channels), (mid_channels, mid_channels),
                        (mid_channels, out_channels)]
        spatial_index = 0 if dw_first else 1
        for i, (cin, cout) in enumerate(channels):
            has_norm = i == 0 or not fewer_norms
            if i == spatial_index:
                conv = nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2,
                                 groups=spatial if depthwise else 1, bias=not has_norm)
            else:
                conv = nn.Conv2d(cin, cout, 1, bias=not has_norm)
            self.add_module(f'conv{i + 1}', conv)
            self.add_module(f'norm{i + 1}',
                            build_norm_layer(norm_cfg, cout)[1] if has_norm else nn.Identity())
        self.act = build_activation_layer(act_cfg)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                build_norm_layer(norm_cfg, out_channels)[1])
        else:
            self.shortcut = nn.Identity()
        if layer_scale_init_value:
            self.gamma = nn.Parameter(torch.full((out_channels, ), float(layer_scale_init_value)))
        else:
            self.register_parameter('gamma', None)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        x = self.norm1(self.conv1(x))
        if not self.fewer_activations:
            x = self.act(x)
        # The one activation that "fewer activations" keeps sits between the two 1x1 convs.
        x = self.act(self.norm2(self.conv2(x)))
        x = self.norm3(self.conv3(x))
        if self.gamma is not None:
            x = self.gamma.view(1, -1, 1, 1) * x
        x = shortcut + self.drop_path(x)
        return x if self.fewer_activations else self.act(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


def _resnet_init(module: nn.Module) -> None:
    # torchvision's ResNet init for the BatchNorm steps.
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (_BatchNorm, nn.GroupNorm)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@register_model()
class ModernizedResNet(StagedBackbone):
    """One step of the ConvNeXt paper's roadmap from ResNet-50 to ConvNeXt-T, as a backbone.

    The step names are :data:`ROADMAP_STEPS`; the design of each is :func:`roadmap_spec`
    (docs/roadmap.md says why). Every step returns NCHW features at strides 4, 8, 16 and 32
    (``dims``: 256-2048 for the ResNet bottlenecks, 384-3072 after ``width``, 96-768 from
    ``inverted_bottleneck`` on). The last step, ``separate_downsampling``, has the same modules
    and state-dict names as ``ConvNeXt(arch='tiny')`` and loads its checkpoints. The rest of the
    contract is :class:`backbones.models.base.Backbone`'s; a classifier on a step puts a
    LayerNorm after pooling only in the last step (``final_norm``), like ConvNeXt. Layer ids
    for lr decay follow ConvNeXt's mapping over the step's real depths (projection shortcuts
    with their block).

    Args:
        step: One of :data:`ROADMAP_STEPS`.
        in_channels: Number of input image channels.
        out_indices: Stages whose outputs :meth:`forward` returns; negative ones count from
            the end.
        kernel_size: Kernel size of the spatial conv (odd). ``None``: 3 before the
            ``kernel_size`` step, 7 from it on; the paper's variants are 3, 5, 7, 9 and 11.
            Steps before ``kernel_size`` only accept 3.
        act_cfg: Activation config, e.g. ``dict(type='ReLU')``. ``None``: ReLU before the
            ``gelu`` step, GELU from it on.
        norm_cfg: Norm config of the BatchNorm steps (before ``layer_norm``), e.g.
            ``dict(type='SyncBN')``. ``None``: ``dict(type='BN')``. The LayerNorm steps always
            use LayerNorm, as ConvNeXt.
        drop_path_rate: Stochastic depth rate of the last block, rising linearly from 0 over
            all blocks.
        layer_scale_init_value: Initial layer-scale value; 0 disables it. ``None``: 1e-6 in
            the last step (as ConvNeXt-T), off before.
        frozen_stages: Freeze the stem and stages up to and including this index; -1 freezes
            nothing.
        norm_eval: Keep BatchNorm layers in eval mode while training (detection practice for
            the BatchNorm steps).
        with_cp: Activation checkpointing in every block.
        init_cfg: MMEngine init config. The ConvNeXt-layout steps load ``Pretrained``
            checkpoints of any ConvNeXt format (see :func:`backbones.convert_checkpoint`); the
            BatchNorm steps load their own (plain state dicts, prefixes and EMA as usual).

    Raises:
        ValueError: Unknown ``step`` (the message lists :data:`ROADMAP_STEPS`), a kernel
            size the step does not take, or a bad ``out_indices`` / ``frozen_stages``.
    """

    def __init__(self,
                 step: str = 'separate_downsampling',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 kernel_size: Optional[int] = None,
                 act_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: Optional[float] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(out_indices, frozen_stages, num_stages=4, init_cfg=init_cfg)
        spec = roadmap_spec(step)
        before_kernel_step = ROADMAP_STEPS.index(step) < ROADMAP_STEPS.index('kernel_size')
        if kernel_size is None:
            kernel_size = spec.kernel_size
        elif before_kernel_step and kernel_size != 3:
            raise ValueError(f'step {step!r} comes before the kernel-size step and uses 3x3 '
                             f'convs; got kernel_size={kernel_size}')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be a positive odd number, got {kernel_size}')
        if layer_scale_init_value is None:
            layer_scale_init_value = 1e-6 if spec.resolution_norms else 0.
        self.step = step
        self.spec = spec
        self.kernel_size = kernel_size
        self.act_cfg = dict(act_cfg) if act_cfg else dict(type=spec.act_type)
        self.depths = spec.depths
        self.norm_eval = norm_eval
        # The ConvNeXt-layout steps compute channels-last and start like ConvNeXt; the
        # BatchNorm steps keep NCHW and torchvision's ResNet init.
        self.channels_last_inside = spec.convnext_layout
        self.default_init = trunc_normal_init if spec.convnext_layout else _resnet_init
        self.final_norm = spec.resolution_norms
        widths = [spec.base_width * 2**i for i in range(4)]
        self.dims = tuple(widths if spec.inverted else [4 * w for w in widths])
        rates = drop_path_rates(self.depths, drop_path_rate)
        if spec.convnext_layout:
            self._build_convnext_layout(in_channels, rates, layer_scale_init_value, with_cp,
                                        act_cfg)
        else:
            self._build_resnet_layout(in_channels, rates, norm_cfg or dict(type='BN'),
                                      layer_scale_init_value, with_cp)
        if spec.resolution_norms:
            for i in self.out_indices:
                self.add_module(f'norm{i}', LayerNorm2d(self.dims[i]))
        grads_in_param_strides(self)  # its 1x1 and depthwise convs, for DDP's bucket views
        self._freeze_stages()

    def _build_resnet_layout(self, in_channels: int, rates: Sequence[Sequence[float]],
                             norm_cfg: dict, layer_scale_init_value: float,
                             with_cp: bool) -> None:
        spec = self.spec
        width = spec.base_width
        if spec.patchify_stem:
            stem = nn.Sequential(nn.Conv2d(in_channels, width, 4, stride=4))
        else:
            stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                build_norm_layer(norm_cfg, width)[1], build_activation_layer(self.act_cfg),
                nn.MaxPool2d(3, stride=2, padding=1))
        # Downsampling happens inside the first block of each stage; the empty slots keep
        # ``downsample_layers[i]`` -> ``stages[i]`` uniform with the ConvNeXt layout.
        self.downsample_layers = nn.ModuleList([stem] + [nn.Identity() for _ in range(3)])
        self.stages = nn.ModuleList()
        in_dim = width
        for i, out_dim in enumerate(self.dims):
            mid = 4 * out_dim if spec.inverted else out_dim // 4
            blocks = []
            for j, rate in enumerate(rates[i]):
                blocks.append(
                    RoadmapBlock(
                        in_dim if j == 0 else out_dim,
                        out_dim,
                        mid,
                        stride=2 if i > 0 and j == 0 else 1,
                        kernel_size=self.kernel_size,
                        depthwise=spec.depthwise,
                        dw_first=spec.dw_first,
                        fewer_activations=spec.fewer_activations,
                        fewer_norms=spec.fewer_norms,
                        norm_cfg=norm_cfg,
                        act_cfg=self.act_cfg,
                        drop_path=float(rate),
                        layer_scale_init_value=layer_scale_init_value,
                        with_cp=with_cp))
            self.stages.append(nn.Sequential(*blocks))
            in_dim = out_dim

    def _build_convnext_layout(self, in_channels: int, rates: Sequence[Sequence[float]],
                               layer_scale_init_value: float, with_cp: bool,
                               act_cfg: Optional[dict]) -> None:
        # The same modules under the same names as ConvNeXt, so the last step loads its
        # checkpoints; the ``layer_norm`` step lacks the LNs around resolution changes.
        dims = self.dims
        stem = [nn.Conv2d(in_channels, dims[0], 4, stride=4)]
        if self.spec.resolution_norms:
            stem.append(LayerNorm2d(dims[0]))
        self.downsample_layers = nn.ModuleList([nn.Sequential(*stem)])
        for i in range(1, 4):
            layers = [nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)]
            if self.spec.resolution_norms:
                layers.insert(0, LayerNorm2d(dims[i - 1]))
            self.downsample_layers.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList()
        for i in range(4):
            blocks = [
                ConvNeXtBlock(
                    dims[i],
                    drop_path=float(rate),
                    layer_scale_init_value=layer_scale_init_value,
                    kernel_size=self.kernel_size,
                    with_cp=with_cp) for rate in rates[i]
            ]
            if act_cfg is not None:
                # ConvNeXtBlock hard-codes GELU; the activation has no parameters, so swapping
                # the module keeps the state dict unchanged (e.g. the ReLU ablation).
                for block in blocks:
                    block.act = build_activation_layer(self.act_cfg)
            self.stages.append(nn.Sequential(*blocks))

    def convert_checkpoint(self, checkpoint, keep_final_norm: bool = False, prefix=None,
                           use_ema: bool = False) -> Tuple[StateDict, str]:
        """A checkpoint of this step: any ConvNeXt format for the ConvNeXt-layout steps, our
        own plain state dicts (``backbone.``/``module.`` prefixes and EMA handled) for the
        BatchNorm steps, which exist nowhere else."""
        if self.spec.convnext_layout:
            return super().convert_checkpoint(checkpoint, keep_final_norm=keep_final_norm,
                                              prefix=prefix, use_ema=use_ema)
        state = unwrap_state_dict(checkpoint, use_ema)
        if prefix is None and any(k.startswith('backbone.') for k in state):
            prefix = 'backbone.'
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if not state:
                raise ValueError(f'no key starts with the prefix {prefix!r}')
        return state, 'ours'

    def train(self, mode: bool = True) -> 'ModernizedResNet':
        """Set train/eval mode, keeping frozen stages (and BN layers with ``norm_eval``) in
        eval mode.

        Args:
            mode: Training mode (True) or evaluation mode (False).

        Returns:
            This module.
        """
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


__all__ = ['ROADMAP_STEPS', 'RoadmapSpec', 'roadmap_spec', 'RoadmapBlock', 'ModernizedResNet']
