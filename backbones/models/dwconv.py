"""The depthwise conv of a ConvNeXt block in CPU training, with a faster weight gradient.

On CPU, oneDNN's weight gradient of the 7x7 depthwise conv costs about 8x its forward pass
(36 ms against 4.6 ms at stage 0 of ConvNeXt-T, batch 16; 17 ms for the 7x7 maps of stage 3)
and was the largest non-GEMM cost of a training step. :func:`depthwise_conv` keeps PyTorch's
forward and input gradient (the same kernels, the same numbers) and computes the weight
gradient with our own C++ kernel (``backbones/csrc/depthwise_grad.cpp``, built on first use
with torch's extension builder and cached), the bias gradient as a plain sum. They equal
PyTorch's to float rounding (a different summation order).

The kernel is used only where it applies: CPU, fp32 without autocast, gradients needed, a
channels-last input (as our backbones compute), stride 1, "same" padding, odd kernel size up
to 11, not under ``torch.compile``. Everything else (GPU, bf16, eval) runs ``nn.Conv2d`` as is.
``BACKBONES_DWCONV_KERNEL=0`` turns it off (A/B timing); if the build fails, a warning says
so once and PyTorch's kernel is used.
"""
import logging
import os
import os.path as osp
import warnings
from typing import Optional

import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable

_SOURCE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'csrc', 'depthwise_grad.cpp')
_KERNEL_SIZES = (3, 5, 7, 9, 11)  # the sizes the C++ kernel is compiled for
_EXTENSION = None  # the loaded module, False once a build failed


def _extension():
    global _EXTENSION
    if _EXTENSION is None:
        try:
            # Its import logs "No CUDA runtime is found" on CPU machines: none is needed.
            logger = logging.getLogger('torch.utils.cpp_extension')
            level = logger.level
            logger.setLevel(logging.ERROR)
            try:
                from torch.utils.cpp_extension import load
                _EXTENSION = load('backbones_depthwise_grad', [_SOURCE],
                                  extra_cflags=['-O3', '-march=native'], verbose=False)
            finally:
                logger.setLevel(level)
        except Exception as exc:  # no compiler, no ninja...: PyTorch's kernel still works
            warnings.warn(f'{_SOURCE}: could not build the depthwise weight-gradient kernel '
                          f'({type(exc).__name__}: {exc}); using PyTorch\'s (slower on CPU)')
            _EXTENSION = False
    return _EXTENSION or None


def kernel_enabled() -> bool:
    """Whether ``BACKBONES_DWCONV_KERNEL`` allows our kernel (default: yes)."""
    return os.environ.get('BACKBONES_DWCONV_KERNEL', '1') != '0'


class _DepthwiseConv(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return torch.nn.functional.conv2d(x, weight, bias, padding=padding, groups=x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last)
        channels, k = x.shape[1], weight.shape[-1]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [ctx.padding] * 2, [1, 1], False, [0, 0],
                channels, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = _extension().depthwise_weight_grad(x, grad, k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


def _applies(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    k = conv.kernel_size[0]
    return (x.device.type == 'cpu' and x.dtype == torch.float32 and x.dim() == 4
            and conv.weight.requires_grad and torch.is_grad_enabled()
            and not torch.is_autocast_enabled('cpu') and not torch.compiler.is_compiling()
            and conv.groups == conv.in_channels == conv.out_channels
            and conv.kernel_size == (k, k) and k in _KERNEL_SIZES
            and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.padding == (k // 2, k // 2) and conv.padding_mode == 'zeros'
            and x.is_contiguous(memory_format=torch.channels_last)
            and kernel_enabled() and _extension() is not None)


def depthwise_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a depthwise ``conv``, with our weight-gradient kernel where it applies.

    Args:
        conv: A depthwise ``nn.Conv2d`` (groups = in = out channels).
        x: ``(N, C, H, W)``.

    Returns:
        ``conv(x)``, the same values; only the weight and bias gradients are computed by us.
    """
    if not _applies(conv, x):
        return conv(x)
    bias: Optional[torch.Tensor] = conv.bias
    return _DepthwiseConv.apply(x, conv.weight, bias, conv.padding[0])
