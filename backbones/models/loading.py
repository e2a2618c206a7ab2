"""Loading pretrained weights into a backbone, and weight initialisation: the file and model
side of checkpoints. The conversion between formats is pure and lives in :mod:`.convert`."""
import logging
from collections.abc import Mapping
from typing import Callable, List, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import PretrainedInit, initialize

from backbones.checkpoint.hub import is_fetched, load_fetched
from backbones.checkpoint.io import load_checkpoint_file
from backbones.utils import is_remote
from .convert import OUTPUT_NORM, convert_and_detect, sample_keys
from .fit import checkpoint_fit, describe_fit


def load_file(filename: str, map_location='cpu'):
    """Load a checkpoint safely (``weights_only``): a local path, or a URL / ``zoo://`` /
    ``torchvision://`` name fetched through the cache (:mod:`backbones.checkpoint.hub`); other
    remote paths (``s3://``...) through MMEngine's file backends."""
    if is_fetched(filename):
        return load_fetched(filename, map_location)
    if is_remote(filename):
        from mmengine.runner.checkpoint import _load_checkpoint
        return _load_checkpoint(filename, map_location=map_location)
    return load_checkpoint_file(filename, map_location=map_location)


def load_pretrained(model: nn.Module,
                    filename: str,
                    prefix=None,
                    map_location='cpu',
                    keep_final_norm: bool = False,
                    use_ema: bool = False) -> Tuple[List[str], List[str]]:
    """Load a checkpoint of any format the backbone reads into it, loudly.

    The file is loaded safely, converted by the model's ``convert_checkpoint`` (any ConvNeXt
    format by default), checked by name and shape as ``load_from`` checkpoints are
    (:func:`backbones.models.fit.checkpoint_fit`) and loaded with ``strict=False``. Missing
    output norms are logged as expected, other missing and unexpected keys as warnings.

    Args:
        model: The backbone.
        filename: Path or URL of the checkpoint.
        prefix: Keep only the keys under this prefix (e.g. ``'backbone.'``) before converting.
        map_location: Passed to the loader.
        keep_final_norm: See :func:`backbones.convert_checkpoint`.
        use_ema: Load the checkpoint's EMA weights instead of the raw ones.

    Returns:
        The missing and the unexpected keys.

    Raises:
        ValueError: Unrecognised format, no key of the model matched, or a shape mismatch;
            the message names the file.
    """
    obj = load_file(filename, map_location)
    name = type(model).__name__
    convert = getattr(model, 'convert_checkpoint', convert_and_detect)
    try:
        state, fmt = convert(obj, keep_final_norm=keep_final_norm, prefix=prefix,
                             use_ema=use_ema)
    except ValueError as e:
        raise ValueError(f'cannot load checkpoint {filename!r} into {name}: {e}') from e
    fit = checkpoint_fit(model, state)  # the same check as load_from's CheckpointMatchHook
    if fit is not None and not fit.matched and not fit.wrong:
        raise ValueError(
            f'checkpoint {filename!r} ({fmt} format) matches no parameter of {name}: its keys '
            f'are {sample_keys(list(fit.file_shapes))}, the model\'s '
            f'{sample_keys(list(fit.model_shapes))}. Is it the right file for this model?')
    if fit is not None and fit.wrong:
        first = fit.wrong[0]
        raise ValueError(describe_fit(
            fit, model, obj, filename,
            f'({fmt} format) does not fit this {name} ({first} is {fit.file_shapes[first]} in '
            f'the file, {fit.model_shapes[first]} in the model)',
            advice='Is it the checkpoint of another arch?'))
    model.load_state_dict(state, strict=False)
    own = model.state_dict()
    matched = [k for k in state if k in own]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    fresh_norms = [k for k in missing if OUTPUT_NORM.match(k)]
    other_missing = [k for k in missing if not OUTPUT_NORM.match(k)]
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
