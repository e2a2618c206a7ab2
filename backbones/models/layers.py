"""The building blocks shared by every ConvNeXt variant in this package.

One implementation of the block: the dense backbone, the isotropic model and the roadmap's
final steps all build :class:`ConvNeXtBlock` from here.
"""
from typing import Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from timm.layers import DropPath


def freeze_modules(modules: Iterable[nn.Module]) -> None:
    """Put modules in eval mode and stop their parameters from training (frozen stages).

    Args:
        modules: The modules to freeze.
    """
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of an ``(N, C, H, W)`` tensor.

    The parameters are those of :class:`torch.nn.LayerNorm` (``weight``, ``bias``), so state
    dicts match the official ``LayerNorm(..., data_format='channels_first')``.

    Args:
        num_channels: Number of channels ``C``.
        eps: Added to the variance for numerical stability.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2) for channels-last ``(N, H, W, C)`` tensors.

    ``Gx`` is the L2 norm of each channel over H and W, ``Nx = Gx / (mean_C(Gx) + eps)`` and the
    output is ``gamma * (x * Nx) + beta + x``. ``gamma`` and ``beta`` have shape ``(C,)`` and
    start at zero, so a fresh GRN is the identity. (The official V2 code stores them as
    ``(1, 1, 1, C)``; :func:`backbones.convert_checkpoint` reshapes.)

    Args:
        dim: Number of channels ``C``.
        eps: Added to the mean response for numerical stability.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)  # (N, 1, 1, C)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, inverted-bottleneck MLP, residual.

    ``dwconv`` (k x k depthwise) -> ``norm`` (channels-last LayerNorm) -> ``pwconv1``
    (Linear C->4C) -> ``act`` (GELU) -> [``grn``] -> ``pwconv2`` (Linear 4C->C) -> layer scale
    ``gamma`` -> ``drop_path`` -> add the input. Submodule names follow the official code.

    Args:
        dim: Number of channels ``C``.
        drop_path: Stochastic depth rate of the residual branch.
        layer_scale_init_value: Initial value of the per-channel layer scale ``gamma``; ``None``
            or ``0`` builds the block without layer scale.
        use_grn: Insert GRN after the activation (ConvNeXt V2 block).
        kernel_size: Kernel size of the depthwise convolution (odd, "same" padding).
        with_cp: Recompute the block in the backward pass (activation checkpointing) to save
            memory; only used while training with gradients enabled.
    """

    def __init__(self,
                 dim: int,
                 drop_path: float = 0.,
                 layer_scale_init_value: Optional[float] = 1e-6,
                 use_grn: bool = False,
                 kernel_size: int = 7,
                 with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim) if use_grn else None
        self.pwconv2 = nn.Linear(4 * dim, dim)
        if layer_scale_init_value:
            self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value)))
        else:
            self.register_parameter('gamma', None)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        if self.grn is not None:
            x = self.grn(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        return shortcut + self.drop_path(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Frozen blocks are in eval mode, so they never pay for recomputation.
        if self.with_cp and self.training and torch.is_grad_enabled():
            # Non-reentrant checkpointing also tracks gradients of parameters when the input
            # does not require grad, and replays the RNG state so DropPath drops the same rows.
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)
