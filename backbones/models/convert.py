"""Checkpoint conversion between the ConvNeXt formats in the wild, and safe pretrained loading.

Formats recognised by :func:`convert_checkpoint` (after unwrapping ``state_dict`` / ``model`` /
``model_ema`` / ... and stripping ``module.`` and ``backbone.`` prefixes):

* ``official``: the official ConvNeXt / ConvNeXt V2 code and ours (the same names:
  ``downsample_layers.i.j``, ``stages.i.j.{dwconv,norm,pwconv1,pwconv2,gamma,grn}``,
  ``norm{i}``; a classifier adds ``norm`` and ``head``). V2's GRN parameters are
  ``(1, 1, 1, C)`` there and ``(C,)`` here.
* ``timm``: ``stem.{0,1}``, ``stages.i.downsample.{0,1}``,
  ``stages.i.blocks.j.{conv_dw,norm,mlp.fc1,mlp.fc2,mlp.grn,gamma}``, ``head.norm``,
  ``head.fc``; the small presets use 1x1 convs (``conv_mlp``), whose ``(4C, C, 1, 1)``
  weights become ``(4C, C)``.
* ``mmpretrain``: ``backbone.`` + official names with ``depthwise_conv``,
  ``pointwise_conv{1,2}``; a classifier's final norm is ``backbone.norm3``, its head
  ``head.fc``.
* ``official_isotropic``: ``stem``, ``blocks.j``, ``norm``, ``head`` (also ours, plus output
  norms ``norm{j}``).

What is dropped: classification heads (``head.*``), always. The classifier's final norm
(official ``norm``, timm ``head.norm``/``norm_pre``, an mmpretrain classifier's ``norm3``) was
trained on globally pooled features; like the official detection and segmentation code we drop
it by default, so the dense output norms start fresh. ``keep_final_norm=True`` loads it into
the last output norm instead. Keys of a recognised format that we do not know pass through
unchanged, so loading reports them as unexpected rather than hiding them.
"""
import logging
import re
from collections.abc import Mapping
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import PretrainedInit, initialize

StateDict = Dict[str, torch.Tensor]

#: Keys under which training frameworks wrap the weights, in order of preference.
WRAPPER_KEYS = ('state_dict', 'model', 'model_ema', 'state_dict_ema', 'module')
#: Keys of EMA weights (ours and timm's, the official code's, MMEngine's EMAHook).
EMA_KEYS = ('state_dict_ema', 'model_ema', 'ema_state_dict')

_BLOCK_RENAMES = {
    'timm': (('conv_dw.', 'dwconv.'), ('mlp.fc1.', 'pwconv1.'), ('mlp.fc2.', 'pwconv2.'),
             ('mlp.grn.weight', 'grn.gamma'), ('mlp.grn.bias', 'grn.beta')),
    'mmpretrain': (('depthwise_conv.', 'dwconv.'), ('pointwise_conv1.', 'pwconv1.'),
                   ('pointwise_conv2.', 'pwconv2.')),
    'official': (),
    'official_isotropic': (),
}
_OUTPUT_NORM = re.compile(r'^norm(\d+)\.')


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        torch.is_tensor(v) for v in obj.values())


def unwrap_state_dict(obj, use_ema: bool = False) -> StateDict:
    """Find the weights in a checkpoint: unwrap ``state_dict``/``model``/... and strip
    ``module.`` (DDP) prefixes.

    Args:
        obj: A loaded checkpoint or a state dict.
        use_ema: Take the EMA weights (``state_dict_ema``, ``model_ema`` or
            ``ema_state_dict``) instead of the raw ones.

    Returns:
        A flat dict of tensors (non-tensor entries dropped).

    Raises:
        ValueError: ``obj`` holds no tensors where weights are expected, or no EMA weights
            when ``use_ema`` is set.
    """
    if use_ema:
        key = next((k for k in EMA_KEYS if isinstance(obj, Mapping)
                    and isinstance(obj.get(k), Mapping)), None)
        if key is None:
            top = _sample(list(obj)) if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f'use_ema: the checkpoint has no EMA weights (none of '
                             f'{", ".join(EMA_KEYS)}; top-level keys: {top})')
        obj = obj[key]
    for _ in range(3):
        if not isinstance(obj, Mapping) or _is_tensor_dict(obj):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f'expected a checkpoint dict or a state dict, got {type(obj).__name__}')
    state = {(k[len('module.'):] if k.startswith('module.') else k): v
             for k, v in obj.items() if torch.is_tensor(v)}
    if not state:
        raise ValueError(f'no tensors found in the checkpoint (top-level keys: '
                         f'{_sample(list(obj))})')
    return state


def _sample(keys: List[str], n: int = 5) -> str:
    shown = ', '.join(repr(k) for k in list(keys)[:n])
    return f'{shown}{", ..." if len(keys) > n else ""} ({len(keys)} keys)'


def detect_format(state: StateDict) -> Optional[str]:
    """Name the format of a (prefix-free) ConvNeXt state dict.

    Args:
        state: A state dict without ``module.`` / ``backbone.`` prefixes.

    Returns:
        ``'timm'``, ``'mmpretrain'``, ``'official'`` (also ours), ``'official_isotropic'``
        (also our isotropic model) or None when unrecognised.
    """
    keys = list(state)
    if any(re.match(r'stages\.\d+\.blocks\.\d+\.conv_dw\.', k) for k in keys):
        return 'timm'
    if any(re.match(r'stages\.\d+\.\d+\.(depthwise_conv|pointwise_conv\d)\.', k) for k in keys):
        return 'mmpretrain'
    if any(re.match(r'stages\.\d+\.\d+\.dwconv\.', k) for k in keys):
        return 'official'
    if any(re.match(r'blocks\.\d+\.dwconv\.', k) for k in keys):
        return 'official_isotropic'
    return None


def _rename(key: str, fmt: str, final_norm: str) -> Optional[str]:
    """Our name for ``key`` of format ``fmt``; None drops it; ``final_norm`` marks the
    classifier's final norm (resolved by the caller)."""
    if fmt == 'timm':
        if key.startswith('stem.'):
            return 'downsample_layers.0.' + key[len('stem.'):]
        match = re.match(r'stages\.(\d+)\.downsample\.(.*)', key)
        if match:
            return f'downsample_layers.{match[1]}.{match[2]}'
        match = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)', key)
        if match:
            key = f'stages.{match[1]}.{match[2]}.{match[3]}'
        elif key.startswith(('head.norm.', 'norm_pre.')):
            return final_norm + key.split('.')[-1]
    elif key.startswith('norm.'):
        return final_norm + key[len('norm.'):]
    if key.startswith('head.'):
        return None
    if re.match(r'(stages\.\d+\.\d+|blocks\.\d+)\.', key):
        for old, new in _BLOCK_RENAMES[fmt]:
            key = key.replace(old, new)
    return key


def _fix_value(key: str, value: torch.Tensor) -> torch.Tensor:
    # GRN: (1, 1, 1, C) officially, (1, C, 1, 1) in timm's conv_mlp -> (C,).
    if re.search(r'\.grn\.(gamma|beta)$', key) and value.dim() != 1:
        return value.reshape(-1)
    # 1x1-conv MLPs (timm conv_mlp, mmpretrain linear_pw_conv=False) -> Linear weights.
    if re.search(r'\.pwconv[12]\.weight$', key) and value.dim() == 4:
        return value.flatten(1)
    return value


def convert_and_detect(obj,
                       keep_final_norm: bool = False,
                       prefix: Optional[str] = None,
                       use_ema: bool = False) -> Tuple[StateDict, str]:
    """:func:`convert_checkpoint`, also naming the source format (for logs and tools).

    Args:
        obj: A loaded checkpoint or a state dict.
        keep_final_norm: See :func:`convert_checkpoint`.
        prefix: Take only the keys under this prefix (stripped); by default ``backbone.``
            when any key has it, else all keys.
        use_ema: Convert the checkpoint's EMA weights (see :func:`unwrap_state_dict`).

    Returns:
        The converted state dict and the format name (see :func:`detect_format`).

    Raises:
        ValueError: The format is not recognised, no key has ``prefix``, or ``use_ema`` is
            set and the checkpoint has no EMA weights.
    """
    raw = unwrap_state_dict(obj, use_ema)
    is_classifier = 'head.fc.weight' in raw or 'head.weight' in raw
    if prefix is None and any(k.startswith('backbone.') for k in raw):
        prefix = 'backbone.'
    state = raw
    if prefix:
        state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f'no key starts with the prefix {prefix!r}; keys: '
                             f'{_sample(list(raw))}')
    fmt = detect_format(state)
    if fmt is None:
        raise ValueError(f'unrecognised checkpoint format: no ConvNeXt block keys among '
                         f'{_sample(list(state))}; expected official, timm, mmpretrain or '
                         f'isotropic ConvNeXt names')
    if fmt == 'official_isotropic':
        blocks = [int(m[1]) for m in (re.match(r'blocks\.(\d+)\.', k) for k in state) if m]
        last = max(blocks)
    else:
        last = 3
    marker = '\0final_norm.'
    out = {}
    for key, value in state.items():
        new = _rename(key, fmt, marker)
        if new is None:
            continue
        # An mmpretrain classifier keeps its final (post-pooling) norm as backbone.norm3.
        if fmt == 'mmpretrain' and is_classifier and new.startswith(f'norm{last}.'):
            new = marker + new.split('.', 1)[1]
        if new.startswith(marker):
            if not keep_final_norm:
                continue
            new = f'norm{last}.' + new[len(marker):]
        out[new] = _fix_value(new, value)
    return out, fmt


def convert_checkpoint(obj, keep_final_norm: bool = False) -> StateDict:
    """Convert a ConvNeXt checkpoint of any known format into our backbone's state dict.

    Accepts official (V1, V2, isotropic), timm, mmpretrain and our own checkpoints, whole
    classifiers or detectors (``backbone.`` keys), wrapped under ``state_dict``, ``model``,
    ``model_ema``... (see the module docstring). Idempotent: converting the result again
    returns an equal dict holding the same tensors.

    Args:
        obj: A loaded checkpoint or a state dict.
        keep_final_norm: Load a classifier's final norm into the last output norm instead of
            dropping it.

    Returns:
        The backbone's weights under our names (classification heads dropped).

    Raises:
        ValueError: The format is not recognised (the message lists some of its keys).
    """
    return convert_and_detect(obj, keep_final_norm)[0]


def convert_to_official(state_dict: StateDict) -> StateDict:
    """Our state dict (dense or isotropic) in the official layout.

    The names are already the official ones (the dense names of the official detection and
    segmentation backbone); GRN parameters get the official ``(1, 1, 1, C)`` shape.

    Args:
        state_dict: Weights of :class:`ConvNeXt` or :class:`ConvNeXtIsotropic`.

    Returns:
        A new dict in the official format.
    """
    out = {}
    for key, value in convert_checkpoint(state_dict).items():
        if re.search(r'\.grn\.(gamma|beta)$', key):
            value = value.reshape(1, 1, 1, -1)
        out[key] = value
    return out


def convert_to_mmpretrain(state_dict: StateDict) -> StateDict:
    """Our dense state dict in mmpretrain's layout (``backbone.`` + mmpretrain names).

    Args:
        state_dict: Weights of :class:`ConvNeXt` (any format :func:`convert_checkpoint` knows).

    Returns:
        A new dict loadable into ``mmpretrain.models.ConvNeXt`` inside a classifier.

    Raises:
        ValueError: The weights are of an isotropic model, which mmpretrain does not have.
    """
    state, fmt = convert_and_detect(state_dict)
    if fmt == 'official_isotropic':
        raise ValueError('mmpretrain has no isotropic ConvNeXt; use the official format')
    out = {}
    for key, value in state.items():
        if key.startswith('stages.'):
            key = (key.replace('.dwconv.', '.depthwise_conv.')
                   .replace('.pwconv1.', '.pointwise_conv1.')
                   .replace('.pwconv2.', '.pointwise_conv2.'))
        out['backbone.' + key] = value
    return out


def _load_file(filename: str, map_location):
    if '://' in str(filename):
        # Remote checkpoints go through MMEngine's loaders (http, hf, s3...).
        from mmengine.runner.checkpoint import _load_checkpoint
        return _load_checkpoint(filename, map_location=map_location)
    from backbones.engine.checkpoint_io import load_checkpoint_file
    return load_checkpoint_file(filename, map_location=map_location)


def load_pretrained(model: nn.Module,
                    filename: str,
                    prefix: Optional[str] = None,
                    map_location='cpu',
                    keep_final_norm: bool = False,
                    use_ema: bool = False) -> Tuple[List[str], List[str]]:
    """Load a checkpoint of any known format into a ConvNeXt backbone, loudly.

    The file is loaded safely (``weights_only``), converted, checked and loaded with
    ``strict=False``. Missing output norms are logged as expected, other missing and
    unexpected keys as warnings.

    Args:
        model: The backbone (:class:`ConvNeXt` or :class:`ConvNeXtIsotropic`).
        filename: Path or URL of the checkpoint.
        prefix: Keep only the keys under this prefix (e.g. ``'backbone.'``) before converting.
        map_location: Passed to the loader.
        keep_final_norm: See :func:`convert_checkpoint`.
        use_ema: Load the checkpoint's EMA weights instead of the raw ones.

    Returns:
        The missing and the unexpected keys.

    Raises:
        ValueError: Unrecognised format, no key of the model matched, or a shape mismatch;
            the message names the file.
    """
    obj = _load_file(filename, map_location)
    name = type(model).__name__
    try:
        state, fmt = convert_and_detect(obj, keep_final_norm, prefix, use_ema)
    except ValueError as e:
        raise ValueError(f'cannot load checkpoint {filename!r} into {name}: {e}') from e
    own = model.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        raise ValueError(
            f'checkpoint {filename!r} ({fmt} format) matches no parameter of {name}: its keys '
            f'are {_sample(list(state))}, the model\'s {_sample(list(own))}. Is it the right '
            'file for this model?')
    for key in matched:
        if state[key].shape != own[key].shape:
            raise ValueError(
                f'checkpoint {filename!r} does not fit this {name}: {key!r} has shape '
                f'{tuple(state[key].shape)} in the checkpoint and {tuple(own[key].shape)} in '
                'the model (wrong arch?)')
    model.load_state_dict(state, strict=False)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    fresh_norms = [k for k in missing if _OUTPUT_NORM.match(k)]
    other_missing = [k for k in missing if not _OUTPUT_NORM.match(k)]
    print_log(f'{name}: loaded {len(matched)}/{len(own)} tensors from {filename} '
              f'({fmt} format{", EMA weights" if use_ema else ""})', logger='current')
    if fresh_norms:
        print_log(f'{name}: output norms not in the checkpoint, initialised fresh (expected '
                  f'for classification checkpoints): {", ".join(fresh_norms)}',
                  logger='current')
    if other_missing:
        print_log(f'{name}: missing keys in {filename}, left at their initialisation: '
                  f'{", ".join(other_missing)}', logger='current', level=logging.WARNING)
    if unexpected:
        print_log(f'{name}: unexpected keys in {filename}, ignored: {", ".join(unexpected)}',
                  logger='current', level=logging.WARNING)
    return missing, unexpected


def trunc_normal_init(module: nn.Module) -> None:
    """The official init: truncated normal (std 0.02) conv/linear weights, zero biases.

    Args:
        module: A module, as given by :meth:`torch.nn.Module.apply`.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_weights_from_cfg(model: nn.Module,
                          default_init: Callable[[nn.Module], None] = trunc_normal_init) -> None:
    """``init_weights`` of our backbones: default init, other ``init_cfg`` entries, then a
    ``Pretrained`` entry through :func:`load_pretrained` (any format, checked).

    Args:
        model: An MMEngine ``BaseModule`` backbone.
        default_init: Applied to every submodule first.
    """
    if model.is_init:
        print_log(f'init_weights of {type(model).__name__} has been called more than once.',
                  logger='current', level=logging.WARNING)
        return
    model.apply(default_init)
    cfgs = model.init_cfg or []
    cfgs = [cfgs] if isinstance(cfgs, Mapping) else list(cfgs)
    pretrained = [c for c in cfgs if c.get('type') in ('Pretrained', PretrainedInit)]
    others = [c for c in cfgs if c not in pretrained]
    if others:
        initialize(model, others)
    if pretrained:
        cfg = pretrained[-1]
        if not cfg.get('checkpoint'):
            raise ValueError(f'init_cfg {cfg} of {type(model).__name__} names no checkpoint')
        load_pretrained(model, cfg['checkpoint'], prefix=cfg.get('prefix'),
                        map_location=cfg.get('map_location', 'cpu'),
                        use_ema=cfg.get('use_ema', False))
    model.is_init = True
