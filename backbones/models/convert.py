"""Checkpoint conversion between the ConvNeXt formats in the wild: pure state-dict functions,
idempotent, no file I/O (loading files into models is :mod:`.loading`; safetensors files and
Hugging Face model directories are read by :func:`backbones.engine.load_checkpoint_file`).

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
* ``hf``: Hugging Face transformers' ``ConvNext*`` and ``ConvNextV2*`` models (``Model``,
  ``Backbone``, ``ForImageClassification`` with its ``convnext.`` / ``convnextv2.`` prefix, and
  the ``backbone.`` of ``UperNetForSemanticSegmentation``): ``embeddings``,
  ``encoder.stages.i.{downsampling_layer,layers.j}``, ``hidden_states_norms.stage{i+1}`` (our
  ``norm{i}``), the classifier's ``layernorm`` and ``classifier`` (see :mod:`.hf`).
* ``fcmae``: ConvNeXt V2 FCMAE pre-training checkpoints (``convnextv2_*_fcmae.pt``): the sparse
  encoder under ``encoder.``, MinkowskiEngine kernels ``(k*k, C)`` (depthwise) and
  ``(k*k, C_in, C_out)`` (downsampling) instead of conv weights, ``.ln`` / ``.linear``
  wrappers, ``(1, C)`` biases and GRN parameters; the decoder (``decoder``, ``proj``,
  ``mask_token``, ``pred``) is dropped.

What is dropped: classification heads (``head.*``), always. The classifier's final norm
(official ``norm``, timm ``head.norm``/``norm_pre``, an mmpretrain classifier's ``norm3``,
transformers' ``layernorm``) was trained on globally pooled features; like the official
detection and segmentation code we drop it by default, so the dense output norms start fresh.
``keep_final_norm=True`` loads it into the last output norm instead. Keys of a recognised
format that we do not know pass through unchanged, so loading reports them as unexpected
rather than hiding them.

Whole detectors and segmentors (the backbone in any of these formats, the rest in
MMDetection's / MMSegmentation's names or transformers' UperNet heads) are converted by
:func:`convert_dense_model_checkpoint`, which keeps the backbone's output norms.
"""
import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Dict, List, Optional, Tuple

import torch

from .hf import hf_backbone_key, hf_head_key, is_hf_backbone, is_hf_heads

StateDict = Dict[str, torch.Tensor]

#: Keys under which training frameworks wrap the weights, in order of preference.
WRAPPER_KEYS = ('state_dict', 'model', 'model_ema', 'state_dict_ema', 'module')
#: Keys of EMA weights (ours and timm's, the official code's, MMEngine's EMAHook).
EMA_KEYS = ('state_dict_ema', 'model_ema', 'ema_state_dict')
#: The dense output norms of our backbones: parameter names ``norm3.weight`` and module names
#: ``norm3``.
OUTPUT_NORM = re.compile(r'^norm(\d+)(\.|$)')

_BLOCK_RENAMES = {
    'timm': (('conv_dw.', 'dwconv.'), ('mlp.fc1.', 'pwconv1.'), ('mlp.fc2.', 'pwconv2.'),
             ('mlp.grn.weight', 'grn.gamma'), ('mlp.grn.bias', 'grn.beta')),
    'mmpretrain': (('depthwise_conv.', 'dwconv.'), ('pointwise_conv1.', 'pwconv1.'),
                   ('pointwise_conv2.', 'pwconv2.')),
    'official': (),
    'official_isotropic': (),
}


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
            top = sample_keys(list(obj)) if isinstance(obj, Mapping) else type(obj).__name__
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
                         f'{sample_keys(list(obj))})')
    return state


def sample_keys(keys: List[str], n: int = 5) -> str:
    """A few of ``keys`` and their count, for error messages."""
    shown = ', '.join(repr(k) for k in list(keys)[:n])
    return f'{shown}{", ..." if len(keys) > n else ""} ({len(keys)} keys)'


def detect_format(state: StateDict) -> Optional[str]:
    """Name the format of a (prefix-free) ConvNeXt state dict.

    Args:
        state: A state dict without ``module.`` / ``backbone.`` prefixes.

    Returns:
        ``'timm'``, ``'mmpretrain'``, ``'official'`` (also ours), ``'official_isotropic'``
        (also our isotropic model), ``'hf'`` (Hugging Face transformers), ``'fcmae'``
        (ConvNeXt V2 FCMAE pre-training) or None when unrecognised.
    """
    keys = list(state)
    # Before 'official': without its 'encoder.' prefix an FCMAE encoder has official block names.
    if any(_FCMAE_KERNEL.match(k) for k in keys):
        return 'fcmae'
    if is_hf_backbone(keys):
        return 'hf'
    if any(re.match(r'stages\.\d+\.blocks\.\d+\.conv_dw\.', k) for k in keys):
        return 'timm'
    if any(re.match(r'stages\.\d+\.\d+\.(depthwise_conv|pointwise_conv\d)\.', k) for k in keys):
        return 'mmpretrain'
    if any(re.match(r'stages\.\d+\.\d+\.dwconv\.', k) for k in keys):
        return 'official'
    if any(re.match(r'blocks\.\d+\.dwconv\.', k) for k in keys):
        return 'official_isotropic'
    return None


#: A sparse (MinkowskiEngine) conv kernel of an FCMAE encoder, with or without ``encoder.``.
_FCMAE_KERNEL = re.compile(r'^(?:encoder\.)?(?:stages\.\d+\.\d+\.dwconv|downsample_layers'
                           r'\.\d+\.\d+)\.kernel$')
#: FCMAE's decoder, which dense models do not have.
_FCMAE_DECODER = ('decoder.', 'proj.', 'pred.', 'mask_token')


def _fcmae_rename(key: str) -> Tuple[Optional[str], str]:
    """``(part, our name)`` of an FCMAE key: ``encoder.`` stripped, ``kernel`` -> ``weight``
    and the ``ln`` / ``linear`` wrapper modules of the sparse layers left out."""
    if key.startswith('encoder.'):
        key = key[len('encoder.'):]
    elif key.startswith(_FCMAE_DECODER):
        return None, key
    *path, name = key.split('.')
    path = [p for p in path if p not in ('ln', 'linear')]
    return 'backbone', '.'.join(path + ['weight' if name == 'kernel' else name])


def _dense_kernel(key: str, kernel: torch.Tensor) -> torch.Tensor:
    """The ``nn.Conv2d`` weight of a MinkowskiEngine kernel.

    MinkowskiEngine stores one ``(C_in, C_out)`` matrix (a ``(C,)`` row for depthwise convs)
    per kernel offset, the offsets ordered with the first spatial axis fastest; a dense
    ``(N, C, H, W)`` image becomes coordinates ``(n, h, w)``, so offset ``(dh, dw)`` is row
    ``dh + k * dw``. Its convolution is, like ``conv2d``, a correlation (``W_i x_{u+i}``).
    """
    kk = kernel.shape[0]
    k = math.isqrt(kk)
    if k * k != kk or kernel.dim() not in (2, 3):
        raise ValueError(f'{key!r}: expected a square sparse kernel (k*k, C) or '
                         f'(k*k, C_in, C_out), got shape {tuple(kernel.shape)}')
    if kernel.dim() == 2:  # depthwise: (k*k, C) -> (kw, kh, C) -> (C, 1, kh, kw)
        return kernel.reshape(k, k, -1).permute(2, 1, 0).unsqueeze(1).contiguous()
    # (k*k, C_in, C_out) -> (kw, kh, C_in, C_out) -> (C_out, C_in, kh, kw)
    return kernel.reshape(k, k, *kernel.shape[1:]).permute(3, 2, 1, 0).contiguous()


def _fcmae_value(key: str, value: torch.Tensor) -> torch.Tensor:
    """A dense value of the FCMAE key ``key``: conv weights from kernels, ``(1, C)`` biases
    of the sparse layers as ``(C,)`` (GRN parameters: see :func:`_fix_value`)."""
    if key.endswith('.kernel'):
        return _dense_kernel(key, value)
    if key.endswith('.bias') and value.dim() == 2 and value.shape[0] == 1:
        return value.reshape(-1)
    return value


def _rename(key: str, fmt: str) -> Tuple[Optional[str], str]:
    """Where a prefix-free key of format ``fmt`` goes: ``(part, our name)`` with part
    ``'backbone'``, ``'final_norm'`` (the classifier's post-pooling norm), ``'head'`` (its
    linear layer) or None (dropped)."""
    if fmt == 'hf':
        return hf_backbone_key(key)
    if fmt == 'fcmae':
        return _fcmae_rename(key)
    if fmt == 'timm':
        if key.startswith('stem.'):
            return 'backbone', 'downsample_layers.0.' + key[len('stem.'):]
        match = re.match(r'stages\.(\d+)\.downsample\.(.*)', key)
        if match:
            return 'backbone', f'downsample_layers.{match[1]}.{match[2]}'
        match = re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)', key)
        if match:
            key = f'stages.{match[1]}.{match[2]}.{match[3]}'
        elif key.startswith(('head.norm.', 'norm_pre.')):
            return 'final_norm', key.split('.')[-1]
        elif key.startswith('head.fc.'):
            return 'head', key[len('head.fc.'):]
    elif key.startswith('norm.'):
        return 'final_norm', key[len('norm.'):]
    elif key.startswith('head.') and fmt != 'mmpretrain':
        return 'head', key[len('head.'):]
    if key.startswith('head.'):
        return None, key
    if re.match(r'(stages\.\d+\.\d+|blocks\.\d+)\.', key):
        for old, new in _BLOCK_RENAMES[fmt]:
            key = key.replace(old, new)
    return 'backbone', key


def _fix_value(key: str, value: torch.Tensor) -> torch.Tensor:
    # GRN: (1, 1, 1, C) officially, (1, C, 1, 1) in timm's conv_mlp -> (C,).
    if re.search(r'\.grn\.(gamma|beta)$', key) and value.dim() != 1:
        return value.reshape(-1)
    # 1x1-conv MLPs (timm conv_mlp, mmpretrain linear_pw_conv=False) -> Linear weights.
    if re.search(r'\.pwconv[12]\.weight$', key) and value.dim() == 4:
        return value.flatten(1)
    return value


@dataclasses.dataclass
class SplitCheckpoint:
    """A ConvNeXt checkpoint of any format, in three parts under our names.

    Args:
        backbone: The backbone's weights (dense or isotropic names).
        final_norm: ``weight``/``bias`` of a classifier's post-pooling norm (empty if none).
        head: ``weight``/``bias`` of a classifier's linear layer (empty if none).
        fmt: The source format (see :func:`detect_format`).
        last_stage: Index of the last output-norm slot: 3 for dense models, the last block
            for isotropic ones.
    """

    backbone: StateDict
    final_norm: StateDict
    head: StateDict
    fmt: str
    last_stage: int


def split_checkpoint(obj, prefix: Optional[str] = None, use_ema: bool = False) -> SplitCheckpoint:
    """Convert a checkpoint of any known format, classifier parts kept apart.

    Args:
        obj: A loaded checkpoint or a state dict.
        prefix: Take the backbone from the keys under this prefix (stripped); by default
            ``backbone.`` when any key has it, else all keys. Classifier heads stored beside
            the prefix (``head.norm.*``, ``head.fc.*``: ours, mmpretrain) are found too.
        use_ema: Convert the checkpoint's EMA weights (see :func:`unwrap_state_dict`).

    Returns:
        The three parts and the format.

    Raises:
        ValueError: The format is not recognised, no key has ``prefix``, or ``use_ema`` is
            set and the checkpoint has no EMA weights.
    """
    raw = unwrap_state_dict(obj, use_ema)
    is_classifier = 'head.fc.weight' in raw or 'head.weight' in raw
    if prefix is None and any(k.startswith('backbone.') for k in raw):
        prefix = 'backbone.'
    state, beside = raw, {}
    if prefix:
        state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        beside = {k: v for k, v in raw.items() if not k.startswith(prefix)}
        if not state:
            raise ValueError(f'no key starts with the prefix {prefix!r}; keys: '
                             f'{sample_keys(list(raw))}')
    fmt = detect_format(state)
    if fmt is None:
        raise ValueError(f'unrecognised checkpoint format: no ConvNeXt block keys among '
                         f'{sample_keys(list(state))}; expected official, timm, mmpretrain, '
                         f'isotropic, Hugging Face or FCMAE ConvNeXt names')
    last = 3
    if fmt == 'official_isotropic':
        last = max(int(m[1]) for m in (re.match(r'blocks\.(\d+)\.', k) for k in state) if m)
    parts: Dict[str, StateDict] = dict(backbone={}, final_norm={}, head={})
    for key, value in state.items():
        part, new = _rename(key, fmt)
        # An mmpretrain classifier keeps its final (post-pooling) norm as backbone.norm3.
        if fmt == 'mmpretrain' and is_classifier and new.startswith(f'norm{last}.'):
            part, new = 'final_norm', new.split('.', 1)[1]
        if part == 'backbone':
            if fmt == 'fcmae':
                value = _fcmae_value(key, value)
            parts[part][new] = _fix_value(new, value)
        elif part:
            parts[part][new] = value
    for key, value in beside.items():  # our and mmpretrain's classifier heads
        for stored, part in (('head.norm.', 'final_norm'), ('head.fc.', 'head')):
            if key.startswith(stored):
                parts[part][key[len(stored):]] = value
    return SplitCheckpoint(fmt=fmt, last_stage=last, **parts)


def convert_and_detect(obj,
                       keep_final_norm: bool = False,
                       prefix: Optional[str] = None,
                       use_ema: bool = False) -> Tuple[StateDict, str]:
    """:func:`convert_checkpoint`, also naming the source format (for logs and tools).

    Args:
        obj: A loaded checkpoint or a state dict.
        keep_final_norm: See :func:`convert_checkpoint`.
        prefix: See :func:`split_checkpoint`.
        use_ema: Convert the checkpoint's EMA weights (see :func:`unwrap_state_dict`).

    Returns:
        The converted state dict and the format name (see :func:`detect_format`).

    Raises:
        ValueError: See :func:`split_checkpoint`.
    """
    split = split_checkpoint(obj, prefix, use_ema)
    state = dict(split.backbone)
    if keep_final_norm:
        state.update({f'norm{split.last_stage}.{k}': v for k, v in split.final_norm.items()})
    return state, split.fmt


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


def convert_dense_model_state(state: StateDict) -> StateDict:
    """A whole detector's or segmentor's state dict (e.g. MMDetection's own ConvNeXt config,
    with mmpretrain's backbone) under our names: the ``backbone.*`` weights through
    :func:`convert_checkpoint`, the neck and heads as they are.

    Args:
        state: The model's state dict.
    """
    backbone = convert_checkpoint({k: v for k, v in state.items() if k.startswith('backbone.')})
    rest = {k: v for k, v in state.items() if not k.startswith('backbone.')}
    return {**{f'backbone.{k}': v for k, v in backbone.items()}, **rest}


def convert_classifier_checkpoint(obj) -> StateDict:
    """Convert a whole ConvNeXt classifier checkpoint (official, timm, mmpretrain or ours) into
    the state dict of :class:`backbones.models.classifier.ImageClassifier`. Idempotent.

    Args:
        obj: A loaded checkpoint or a state dict.

    Returns:
        ``backbone.*`` keys (see :func:`convert_checkpoint`) plus ``head.norm.*`` and
        ``head.fc.*`` when the checkpoint has a classification head.

    Raises:
        ValueError: The format is not recognised.
    """
    split = split_checkpoint(obj)
    state = {f'backbone.{k}': v for k, v in split.backbone.items()}
    state.update({f'head.norm.{k}': v for k, v in split.final_norm.items()})
    state.update({f'head.fc.{k}': v for k, v in split.head.items()})
    return state


def convert_dense_model_checkpoint(obj) -> StateDict:
    """Convert a whole detector or segmentor checkpoint into the names of our configs' models.

    The ``backbone.*`` keys, in any format :func:`detect_format` knows, get our backbone's
    names (output norms ``norm{i}`` kept: a whole model trained them); transformers' UperNet
    heads (``decode_head.*``, ``auxiliary_head.*``) get MMSegmentation's names (``bn``,
    ``conv_seg``). Every other key, and a backbone of no known format, passes through unchanged,
    so loading with ``strict=True`` reports what does not fit. A checkpoint already in our names
    comes back with the same keys and the same tensors; converting twice equals converting
    once.

    Args:
        obj: A whole model's state dict, or a checkpoint wrapping one (see
            :func:`unwrap_state_dict`; ``module.`` prefixes are stripped).

    Returns:
        The state dict under our names.

    Raises:
        ValueError: ``obj`` holds no tensors, or two keys would get the same name.
    """
    raw = unwrap_state_dict(obj)
    prefix = 'backbone.'
    fmt = detect_format({k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)})
    hf_heads = is_hf_heads(raw)
    out: StateDict = {}
    for key, value in raw.items():
        new = key
        if fmt and key.startswith(prefix):
            sub = key[len(prefix):]
            part, renamed = _rename(sub, fmt)
            # A classifier's parts (final norm, head) inside a dense model: leave them be.
            if part == 'backbone':
                if fmt == 'fcmae':
                    value = _fcmae_value(sub, value)
                new, value = prefix + renamed, _fix_value(renamed, value)
        elif hf_heads:
            new = hf_head_key(key)
        if new in out:
            raise ValueError(f'cannot convert the checkpoint: two keys become {new!r} (is it '
                             'a mix of formats?)')
        out[new] = value
    return out


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
