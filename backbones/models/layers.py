"""The building blocks shared by every ConvNeXt variant in this package.

One implementation of the block: the dense backbone, the isotropic model and the roadmap's
final steps all build :class:`ConvNeXtBlock` from here.
"""
import functools
from typing import Iterable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from timm.layers import DropPath

from .dwconv import depthwise_conv

# oneDNN's fused linear kernels (bias + GELU, bias + residual add in one pass) exist only in
# CPU builds with MKLDNN; elsewhere the fast path uses plain ops with the same folded weights.
_HAS_ONEDNN_LINEAR = bool(torch.backends.mkldnn.is_available()) and hasattr(
    torch.ops.mkldnn, '_linear_pointwise')
# oneDNN has no bf16 inner product on CPUs without bf16 instructions (it raises).
_ONEDNN_BF16 = _HAS_ONEDNN_LINEAR and bool(
    getattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', lambda: False)())


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the matmuls of ``x`` run in: the autocast dtype when autocast is on."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def set_fast_inference(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch the inference fast path of every :class:`ConvNeXtBlock` in ``module`` on or off.

    Backbones that define ``fast_inference`` (ConvNeXt, isotropic ConvNeXt) get the flag too.

    Args:
        module: A block, a backbone or any model holding them.
        enabled: True for the fast path (used in eval mode only), False for the plain path.

    Returns:
        ``module``.
    """
    for sub in module.modules():
        if hasattr(sub, 'fast_inference'):
            sub.fast_inference = bool(enabled)
    return module


def set_fast_training(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch the training path of every :class:`ConvNeXtBlock` in ``module``: the fast one
    (the default; :meth:`ConvNeXtBlock.forward_train`) or the plain one (the reference it is
    tested against).

    Args:
        module: A block, a backbone or any model holding them.
        enabled: True for the fast training path, False for the plain path.

    Returns:
        ``module``.
    """
    for sub in module.modules():
        if isinstance(sub, ConvNeXtBlock):
            sub.fast_training = bool(enabled)
    return module


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    # On CPU: matmul, then the bias added in place. addmm (F.linear) first copies the bias
    # into its whole output, one more pass (about 4 ms of a 24 ms GEMM on 2 cores). GPUs add
    # the bias in the GEMM's epilogue: F.linear there.
    if x.device.type != 'cpu':
        return F.linear(x, weight, bias)
    return torch.matmul(x, weight.t()).add_(bias)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` when ``x`` is a channels-last 4-D tensor that is not also plain
    contiguous, else ``torch.contiguous_format``: the layout a layout-preserving op returns."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def standard_layout(features: Iterable[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
    """The feature maps a backbone hands to its consumers: contiguous NCHW, whatever layout
    they were computed in. Compiled ops downstream (mmcv's RoIAlign among them) read raw
    memory as NCHW; a copy here is cheap next to the backbone, a wrong layout is silent."""
    return tuple(f.contiguous() for f in features)


def grads_in_param_strides(module: nn.Module) -> nn.Module:
    """Hand every weight of ``module`` with a size-1 dim its gradients in its own strides.

    Depthwise ``(C, 1, k, k)`` and 1x1 ``(O, I, 1, 1)`` conv weights get their gradients from
    channels-last activations with other strides on their size-1 dims than the parameter's:
    the same bytes, but autograd stores them as they are (its layout contract ignores size-1
    dims) and DDP, comparing every stride with its bucket view, warns "Grad strides do not
    match bucket view strides" and takes a strided copy each step. A hook re-strides such a
    gradient: a free view of the same memory. Other layout differences are left to autograd.

    Args:
        module: Its parameters with a size-1 dim get the hook (once).

    Returns:
        ``module``.
    """
    for param in module.parameters():
        if param.dim() < 2 or 1 not in param.shape or getattr(param, '_restrides_grad', False):
            continue
        param.register_hook(functools.partial(_restride_grad, param))
        param._restrides_grad = True
    return module


def _restride_grad(param: nn.Parameter, grad: torch.Tensor) -> torch.Tensor:
    want = param.stride()
    if grad.stride() == want or grad.shape != param.shape:
        return grad
    if any(n != 1 and a != b for n, a, b in zip(grad.shape, grad.stride(), want)):
        return grad
    return grad.as_strided(grad.shape, want)


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
        """Normalise ``x`` ``(N, C, H, W)`` over C; the output has ``x``'s memory layout.

        ``F.layer_norm`` needs C last, so it runs on the NHWC view and its result, permuted
        back, is channels-last in memory. Returned as such to a channels-last caller (free);
        a contiguous caller gets a contiguous tensor, never a permuted view it did not ask for.
        """
        out = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                           self.eps)
        return out.permute(0, 3, 1, 2).contiguous(memory_format=memory_format_of(x))


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
        fast_inference: In eval mode, run :meth:`forward_fast` (same numbers to float rounding,
            fewer memory passes) instead of the plain path. Training never uses it.
    """

    def __init__(self,
                 dim: int,
                 drop_path: float = 0.,
                 layer_scale_init_value: Optional[float] = 1e-6,
                 use_grn: bool = False,
                 kernel_size: int = 7,
                 with_cp: bool = False,
                 fast_inference: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.fast_inference = fast_inference
        self.fast_training = True
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        grads_in_param_strides(self.dwconv)  # for DDP's bucket views (see there)
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
        if self.fast_training and self.training and torch.is_grad_enabled():
            return self.forward_train(x)
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

    def forward_train(self, x: torch.Tensor) -> torch.Tensor:
        """Training path: the numbers of the plain path to float rounding, fewer passes.

        Our depthwise weight-gradient kernel on CPU (:mod:`backbones.models.dwconv`), the layer
        scale folded into ``pwconv2`` (``(gamma W) h + gamma b``: no multiply over the output
        and none in the backward pass, where autograd takes the small products' gradients
        instead), and linears as matmul + in-place bias add instead of addmm's bias copy.
        """
        shortcut = x
        x = depthwise_conv(self.dwconv, x)
        x = self.norm(x.permute(0, 2, 3, 1))
        x = self.act(_linear(x, self.pwconv1.weight, self.pwconv1.bias))
        if self.grn is not None:
            x = self.grn(x)
        weight, bias = self.pwconv2.weight, self.pwconv2.bias
        if self.gamma is not None:
            weight, bias = weight * self.gamma[:, None], bias * self.gamma
        x = _linear(x, weight, bias).permute(0, 3, 1, 2)
        return shortcut + self.drop_path(x)

    def folded_pwconv2(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias of ``pwconv2`` with GRN's ``beta`` and the layer scale folded in.

        ``gamma * (W (h * s + beta) + b) = (gamma W) (h * s) + gamma (W beta + b)``, so the
        fast path needs neither the ``beta`` add nor the layer-scale multiply. Computed on every
        call (a few hundred kFLOPs) so loaded or trained weights can never go stale.

        Returns:
            ``(weight, bias)`` of shapes ``(C, 4C)`` and ``(C,)``.
        """
        weight, bias = self.pwconv2.weight, self.pwconv2.bias
        if self.grn is not None:
            bias = torch.addmv(bias, weight, self.grn.beta)
        if self.gamma is not None:
            weight = weight * self.gamma[:, None]
            bias = bias * self.gamma
        return weight, bias

    def _use_onednn(self, x: torch.Tensor) -> bool:
        # The fused oneDNN ops have no autograd formula and are opaque to torch.compile, which
        # fuses the plain ops itself.
        if not (_HAS_ONEDNN_LINEAR and x.device.type == 'cpu'):
            return False
        dtype = _compute_dtype(x)
        if dtype not in (torch.float32, torch.bfloat16):
            return False
        if dtype == torch.bfloat16 and not _ONEDNN_BF16:
            return False
        if torch.compiler.is_compiling():
            return False
        return not (torch.is_grad_enabled() and
                    (x.requires_grad or self.pwconv1.weight.requires_grad))

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """Inference path: folded layer scale and GRN bias, fused linear + GELU and linear +
        residual on CPU (oneDNN), no copies for channels-last inputs. No DropPath (eval only).

        Args:
            x: ``(N, C, H, W)``, best in ``torch.channels_last`` memory format (then every
                permute is a free view).

        Returns:
            ``(N, C, H, W)`` in the memory layout of ``x``, equal to :meth:`_forward` in eval
            mode up to float rounding.
        """
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.norm.normalized_shape, self.norm.weight, self.norm.bias,
                         self.norm.eps)
        weight2, bias2 = self.folded_pwconv2()
        onednn = self._use_onednn(x)
        dtype = _compute_dtype(x)
        if onednn:
            x = torch.ops.mkldnn._linear_pointwise(
                x.to(dtype).contiguous(), self.pwconv1.weight.to(dtype),
                self.pwconv1.bias.to(dtype), 'gelu', [], 'none')
        else:
            x = F.gelu(self.pwconv1(x))
        if self.grn is not None:
            # GRN without beta (folded into pwconv2): x * (1 + gamma * Nx), one pass over x.
            gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
            nx = gx / (gx.mean(dim=-1, keepdim=True) + self.grn.eps)
            x = x * torch.addcmul(torch.ones_like(nx), nx, self.grn.gamma.to(nx.dtype))
        if onednn:
            x = torch.ops.mkldnn._linear_pointwise.binary(
                x.to(dtype).contiguous(), shortcut.permute(0, 2, 3, 1).to(dtype).contiguous(),
                weight2.to(dtype), bias2.to(dtype), 'add')
            # Channels-last like the fused kernel's output; free when the input was too.
            return x.permute(0, 3, 1, 2).contiguous(memory_format=memory_format_of(shortcut))
        x = F.linear(x, weight2.to(x.dtype), bias2.to(x.dtype))
        return shortcut + x.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast_inference and not self.training:
            return self.forward_fast(x)
        # Frozen blocks are in eval mode, so they never pay for recomputation.
        if self.with_cp and self.training and torch.is_grad_enabled():
            # Non-reentrant checkpointing also tracks gradients of parameters when the input
            # does not require grad, and replays the RNG state so DropPath drops the same rows.
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)
