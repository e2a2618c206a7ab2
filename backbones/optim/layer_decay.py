"""Layer-wise learning-rate decay for ConvNeXt fine-tuning (detection and segmentation).

Split as in the official code: a pure name -> layer-id mapping (each backbone's
``get_layer_id``, collected by :func:`get_layer_ids`) and a thin registered constructor.
"""
import logging
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from backbones.registry import register_optim_constructor


def _find_backbone(model: nn.Module):
    """The module that knows the layer ids, and the name prefix of its parameters."""
    backbone = getattr(model, 'backbone', None)
    if backbone is not None and hasattr(backbone, 'get_layer_id'):
        return backbone, 'backbone.'
    if hasattr(model, 'get_layer_id'):
        return model, ''
    raise TypeError(
        f'layer-wise lr decay needs a backbone with a get_layer_id(param_name, num_layers, '
        f'decay_type) method, as model.backbone or the model itself; {type(model).__name__} '
        f'(backbone: {type(backbone).__name__ if backbone is not None else None}) has none')


def get_layer_ids(model: nn.Module,
                  num_layers: int,
                  decay_type: str = 'layer_wise') -> Dict[str, int]:
    """Layer id of every parameter of a model (a whole detector/segmentor or a backbone).

    Parameters of ``model.backbone`` get ``backbone.get_layer_id(name, ...)`` (name relative to
    the backbone); everything outside the backbone (necks, heads) gets ``num_layers + 1``.

    Args:
        model: A model with a ``backbone`` that has ``get_layer_id``, or such a backbone.
        num_layers: ``N`` of the decay schedule.
        decay_type: ``'layer_wise'`` or ``'stage_wise'``.

    Returns:
        Parameter name (as in ``model.named_parameters()``) -> layer id in ``[0, N + 1]``.

    Raises:
        TypeError: Neither ``model.backbone`` nor ``model`` has ``get_layer_id``.
    """
    model = getattr(model, 'module', model)  # DDP and MMEngine model wrappers
    backbone, prefix = _find_backbone(model)
    ids = {}
    for name, _ in model.named_parameters():
        if name.startswith(prefix):
            ids[name] = backbone.get_layer_id(name[len(prefix):], num_layers, decay_type)
        else:
            ids[name] = num_layers + 1
    return ids


def lr_scale(layer_id: int, num_layers: int, decay_rate: float) -> float:
    """Learning-rate multiplier of a layer id: ``decay_rate ** (num_layers + 1 - layer_id)``.

    Args:
        layer_id: Id from ``get_layer_id``.
        num_layers: ``N`` of the decay schedule.
        decay_rate: Per-layer decay factor.

    Returns:
        The multiplier (1 for the heads, ``decay_rate ** (N + 1)`` for the stem).
    """
    return decay_rate**(num_layers + 1 - layer_id)


@register_optim_constructor('LearningRateDecayOptimizerConstructor')
@register_optim_constructor()
class LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with layer-wise learning-rate decay.

    Registered in MMEngine's, MMDetection's and MMSegmentation's registries under
    ``LayerDecayOptimizerConstructor`` and ``LearningRateDecayOptimizerConstructor``
    (overriding their own), so configs written either way get this one::

        optim_wrapper = dict(
            type='AmpOptimWrapper',
            optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
            constructor='LayerDecayOptimizerConstructor',
            paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=6))

    Layer ids come from the backbone's own ``get_layer_id`` (see :func:`get_layer_ids`); a
    group's lr is ``lr * decay_rate ** (num_layers + 1 - id)``. Parameters that are 1-D (norms,
    biases, layer scales), named ``*.bias`` or belonging to a GRN get weight decay 0; frozen
    parameters are left out. Other ``paramwise_cfg`` options of the default constructor
    (``custom_keys``, ``*_decay_mult``) are not applied.

    Args:
        optim_wrapper_cfg: The optimizer-wrapper config (with ``optimizer``).
        paramwise_cfg: ``decay_rate`` (float), ``num_layers`` (int) and optionally
            ``decay_type`` (``'layer_wise'``, default, or ``'stage_wise'``).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        missing = [k for k in ('decay_rate', 'num_layers') if k not in (paramwise_cfg or {})]
        if missing:
            raise ValueError(f'{type(self).__name__} needs paramwise_cfg with decay_rate and '
                             f'num_layers; missing {", ".join(missing)} in {paramwise_cfg}')
        if self.base_lr is None:
            raise ValueError(f'{type(self).__name__} needs optimizer.lr')

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[float] = None) -> None:
        """Append one parameter group per (layer id, weight decay on/off) to ``params``.

        Args:
            params: The list of parameter groups, extended in place.
            module: The model.
            prefix: Unused (kept for the base-class signature).
            is_dcn_module: Unused (kept for the base-class signature).
        """
        num_layers = int(self.paramwise_cfg['num_layers'])
        decay_rate = float(self.paramwise_cfg['decay_rate'])
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        weight_decay = self.base_wd or 0.
        layer_ids = get_layer_ids(module, num_layers, decay_type)

        groups: Dict[str, dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = param.ndim == 1 or name.endswith('.bias') or '.grn.' in name
            layer_id = layer_ids[name]
            group_name = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if group_name not in groups:
                scale = lr_scale(layer_id, num_layers, decay_rate)
                groups[group_name] = dict(
                    params=[],
                    param_names=[],
                    lr=self.base_lr * scale,
                    lr_scale=scale,
                    weight_decay=0. if no_decay else weight_decay,
                    group_name=group_name,
                    layer_id=layer_id)
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)

        ordered = sorted(groups.values(), key=lambda g: (g['layer_id'], g['group_name']))
        print_log(f'{type(self).__name__}: {decay_type} decay {decay_rate}, num_layers '
                  f'{num_layers}, {len(ordered)} parameter groups', logger='current')
        for group in ordered:
            print_log(f'  {group["group_name"]}: {len(group["params"])} params, lr scale '
                      f'{group["lr_scale"]:.4g}, lr {group["lr"]:.4g}, weight decay '
                      f'{group["weight_decay"]}', logger='current')
            print_log(f'  {group["group_name"]}: {", ".join(group["param_names"])}',
                      logger='current', level=logging.DEBUG)
            # Names were for the log; optimizers keep extra keys but do not need these.
            del group['param_names']
        params.extend(ordered)
