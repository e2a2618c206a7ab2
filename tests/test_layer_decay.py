"""Layer-wise learning-rate decay: the official mapping, and the constructor as MMDetection and
MMSegmentation configs reach it."""
from importlib import import_module

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import backbones  # noqa: F401
from backbones import (ConvNeXt, ConvNeXtIsotropic, LayerDecayOptimizerConstructor, get_layer_ids,
                       lr_scale)


# The official mapping, restated independently from object_detection/mmcv_custom/
# layer_decay_optimizer_constructor.py of the official repository (names carry `backbone.`).
def official_layer_wise(var_name: str, num_max_layer: int) -> int:
    if var_name.startswith('backbone.downsample_layers'):
        stage_id = int(var_name.split('.')[2])
        return {0: 0, 1: 2, 2: 3, 3: num_max_layer}[stage_id]
    if var_name.startswith('backbone.stages'):
        stage_id, block_id = int(var_name.split('.')[2]), int(var_name.split('.')[3])
        return {0: 1, 1: 2, 2: 3 + block_id // 3, 3: num_max_layer}[stage_id]
    return num_max_layer + 1


def official_stage_wise(var_name: str, num_max_layer: int) -> int:
    # The official constructor passes num_layers + 2 here.
    if var_name.startswith('backbone.downsample_layers'):
        return 0
    if var_name.startswith('backbone.stages'):
        return int(var_name.split('.')[2]) + 1
    return num_max_layer - 1


class Toy(nn.Module):
    """A detector-shaped model: backbone, neck, head."""

    def __init__(self, backbone: nn.Module, channels: int = 320) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = nn.Conv2d(channels, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)[-1]).mean((-2, -1)))


@pytest.mark.parametrize('arch,num_layers', [('tiny', 6), ('base', 12), ('small', 12),
                                             ('large', 12)])
@pytest.mark.parametrize('decay_type', ['layer_wise', 'stage_wise'])
def test_mapping_equals_official(arch, num_layers, decay_type):
    with torch.device('meta'):
        model = Toy(ConvNeXt(arch))
    ids = get_layer_ids(model, num_layers, decay_type)
    for name, layer_id in ids.items():
        if decay_type == 'layer_wise':
            expected = official_layer_wise(name, num_layers)
        else:
            expected = official_stage_wise(name, num_layers + 2)
        assert layer_id == expected, name
    # The official scale decay_rate ** (num_layers + 2 - layer_id - 1).
    assert lr_scale(3, num_layers, 0.7) == pytest.approx(0.7**(num_layers + 2 - 3 - 1))
    assert max(ids.values()) == num_layers + 1 and min(ids.values()) == 0


def _forward_order(name: str) -> tuple:
    # ConvNeXt registers all downsampling layers before the stages; order them as they run.
    parts = name.split('.')
    if parts[0] in ('downsample_layers', 'stages'):
        return (int(parts[1]), parts[0] == 'stages')
    return (99, False)


def _assert_monotone(model: nn.Module, num_layers: int) -> set:
    ids = get_layer_ids(model, num_layers, 'layer_wise')
    ordered = [ids[n] for n in sorted(ids, key=_forward_order)]  # stable: keeps block order
    assert ordered == sorted(ordered)
    return set(ordered)


def test_atto_and_isotropic_ids_are_sensible():
    with torch.device('meta'):
        atto = ConvNeXt('atto')
        nano = ConvNeXt('nano')
        iso = ConvNeXtIsotropic('small')
    assert _assert_monotone(atto, 6) == set(range(8))
    # Stage 2 of atto (6 blocks) in groups of 2, of nano (8 blocks) in groups of 3.
    assert [atto.get_layer_id(f'stages.2.{b}.dwconv.weight', 6) for b in range(6)] == [
        3, 3, 4, 4, 5, 5]
    assert [nano.get_layer_id(f'stages.2.{b}.dwconv.weight', 6) for b in range(8)] == [
        3, 3, 3, 4, 4, 4, 5, 5]
    assert _assert_monotone(iso, 18) == set(range(20))
    assert _assert_monotone(iso, 6) == set(range(8))
    assert iso.get_layer_id('blocks.17.gamma', 6, 'stage_wise') == 4
    assert iso.get_layer_id('stem.weight', 6, 'stage_wise') == 0
    with pytest.raises(ValueError, match='num_layers'):
        atto.get_layer_id('stages.2.0.dwconv.weight', 3)
    with pytest.raises(ValueError, match='decay_type'):
        atto.get_layer_id('stages.2.0.dwconv.weight', 6, 'block_wise')


def _groups_by_param(optimizer) -> dict:
    return {id(p): group for group in optimizer.param_groups for p in group['params']}


CASES = [
    ('mmdet', 'LearningRateDecayOptimizerConstructor', 'layer_wise'),
    ('mmdet', 'LayerDecayOptimizerConstructor', 'layer_wise'),
    ('mmseg', 'LearningRateDecayOptimizerConstructor', 'stage_wise'),
    ('mmseg', 'LayerDecayOptimizerConstructor', 'layer_wise'),
]


@pytest.mark.parametrize('scope,name,decay_type', CASES)
def test_constructor_through_downstream_registries(scope, name, decay_type):
    registry = import_module(f'{scope}.registry').OPTIM_WRAPPER_CONSTRUCTORS
    model = Toy(ConvNeXt('atto', use_grn=True, frozen_stages=0))
    rate, lr, wd, num_layers = 0.8, 1e-3, 0.05, 6
    cfg = dict(
        optimizer=dict(type='AdamW', lr=lr, weight_decay=wd),
        constructor=name,
        paramwise_cfg=dict(decay_rate=rate, decay_type=decay_type, num_layers=num_layers))
    with DefaultScope.overwrite_default_scope(scope):
        assert registry.get(name) is LayerDecayOptimizerConstructor
        optim_wrapper = build_optim_wrapper(model, cfg)
    groups = _groups_by_param(optim_wrapper.optimizer)
    params = dict(model.named_parameters())

    def lr_of(param_name):
        return groups[id(params[param_name])]['lr']

    def wd_of(param_name):
        return groups[id(params[param_name])]['weight_decay']

    # Frozen stem and stage 0 are not optimised at all.
    assert id(params['backbone.downsample_layers.0.0.weight']) not in groups
    assert id(params['backbone.stages.0.1.pwconv1.weight']) not in groups
    stage2 = 'backbone.stages.2.4.pwconv1.weight'
    if decay_type == 'layer_wise':
        assert lr_of('backbone.downsample_layers.1.1.weight') == pytest.approx(lr * rate**5)
        assert lr_of(stage2) == pytest.approx(lr * rate**2)  # id 3 + 4 // 2 = 5
        assert lr_of('backbone.stages.3.0.dwconv.weight') == pytest.approx(lr * rate)
    else:
        assert lr_of('backbone.downsample_layers.1.1.weight') == pytest.approx(lr * rate**7)
        assert lr_of(stage2) == pytest.approx(lr * rate**4)  # stage 2 -> id 3
    assert lr_of('head.weight') == pytest.approx(lr)
    assert lr_of('neck.weight') == pytest.approx(lr)
    assert lr_of('backbone.norm3.weight') == pytest.approx(lr)
    assert wd_of(stage2) == wd and wd_of('head.weight') == wd
    for no_decay in (stage2.replace('weight', 'bias'), 'backbone.stages.2.4.grn.gamma',
                     'backbone.stages.2.4.grn.beta', 'backbone.stages.2.4.norm.weight',
                     'head.bias'):
        assert wd_of(no_decay) == 0, no_decay
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(groups) == len(trainable)


def test_constructor_on_a_bare_backbone_and_errors():
    backbone = ConvNeXt('atto', layer_scale_init_value=1.)
    cfg = dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4),
               constructor='LayerDecayOptimizerConstructor',
               paramwise_cfg=dict(decay_rate=0.5, num_layers=6))
    optimizer = build_optim_wrapper(backbone, cfg).optimizer
    groups = _groups_by_param(optimizer)
    assert groups[id(backbone.downsample_layers[0][0].weight)]['lr'] == pytest.approx(0.1 * 0.5**7)
    assert groups[id(backbone.stages[0][0].gamma)]['weight_decay'] == 0  # layer scale

    with pytest.raises(ValueError, match='num_layers'):
        build_optim_wrapper(backbone, dict(cfg, paramwise_cfg=dict(decay_rate=0.5)))
    with pytest.raises(TypeError, match='get_layer_id'):
        build_optim_wrapper(Toy(nn.Conv2d(3, 320, 1)), cfg)
