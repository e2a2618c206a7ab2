"""mmcv ops that read a feature map's raw memory, made correct for any memory layout.

mmcv 2.1.0's RoIAlign kernel (CPU, and its CUDA launcher too) takes ``input.data_ptr()`` and
indexes it as contiguous NCHW without checking. A channels-last feature map (what a
permute-based ``LayerNorm2d`` returns, or any model moved to ``torch.channels_last``) is then
read scrambled, silently: the RPN still learns, the RoI heads do not. Our backbones return
contiguous maps, but a user's own model may not, so importing :mod:`backbones` also wraps the
forward of the mmcv autograd functions below: their tensor arguments are made contiguous first
(free for tensors that already are). Backward passes are unaffected: these functions build
their own contiguous gradients.
"""
import functools
import importlib
from typing import Callable, Tuple

import torch

#: ``(module, autograd.Function)`` of the mmcv ops whose kernels index feature-map memory as
#: contiguous NCHW, found by reading mmcv 2.1.0's sources (docs/reliability.md, "Memory layout").
RAW_MEMORY_FUNCTIONS: Tuple[Tuple[str, str], ...] = (
    ('mmcv.ops.roi_align', 'RoIAlignFunction'),  # Mask R-CNN / Cascade box and mask RoIs
    ('mmcv.ops.roi_pool', 'RoIPoolFunction'),
    ('mmcv.ops.deform_roi_pool', 'DeformRoIPoolFunction'),
    ('mmcv.ops.psa_mask', 'PSAMaskFunction'),  # MMSegmentation's PSANet
    ('mmcv.ops.deform_conv', 'DeformConv2dFunction'),  # DCN variants of the detectors
    ('mmcv.ops.modulated_deform_conv', 'ModulatedDeformConv2dFunction'),
)

_GUARD = '_contiguous_inputs_guard'


def contiguous_inputs(forward: Callable) -> Callable:
    """Wrap an autograd ``forward(ctx, *args)`` so tensor arguments arrive contiguous.

    Args:
        forward: The function's ``forward`` staticmethod.

    Returns:
        The wrapped function (marked, so wrapping twice is a no-op).
    """
    if getattr(forward, _GUARD, False):
        return forward

    @functools.wraps(forward)
    def wrapper(ctx, *args, **kwargs):
        args = [a.contiguous() if torch.is_tensor(a) else a for a in args]
        kwargs = {k: v.contiguous() if torch.is_tensor(v) else v for k, v in kwargs.items()}
        return forward(ctx, *args, **kwargs)

    setattr(wrapper, _GUARD, True)
    return wrapper


def install_layout_guards() -> None:
    """Guard every function of :data:`RAW_MEMORY_FUNCTIONS` (idempotent)."""
    for module_name, name in RAW_MEMORY_FUNCTIONS:
        function = getattr(importlib.import_module(module_name), name)
        function.forward = staticmethod(contiguous_inputs(function.forward))


def is_guarded(function: type) -> bool:
    """Whether an autograd function's forward has been wrapped by :func:`contiguous_inputs`."""
    return getattr(function.forward, _GUARD, False)
