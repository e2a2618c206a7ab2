"""The ResNet-50 -> ConvNeXt-T roadmap (the paper's Table 10): steps, FLOPs, shapes, equivalence."""
import dataclasses

import pytest
import torch
import torch.nn as nn

import backbones  # noqa: F401
import backbones.models.roadmap  # noqa: F401  (registers ModernizedResNet even if not exported)
from backbones.analysis import (ROADMAP_PAPER_GFLOPS, ROADMAP_PAPER_KERNEL_GFLOPS, paper_classifier,
                                roadmap_gflops)
from backbones.models.convnext import ConvNeXt
from backbones.models.roadmap import ROADMAP_STEPS, ModernizedResNet, roadmap_spec

PAPER_ROWS = ('resnet50', 'enhanced_recipe', 'stage_ratio', 'patchify_stem', 'depthwise_conv',
              'width', 'inverted_bottleneck', 'move_up_dwconv', 'kernel_size', 'gelu',
              'fewer_activations', 'fewer_norms', 'layer_norm', 'separate_downsampling')
# Steps of a very different structure, enough to exercise each code path of the slow checks.
REPRESENTATIVE = ('resnet50', 'inverted_bottleneck', 'fewer_norms', 'separate_downsampling')


def _depth_key(name):
    # Forward order of a parameter: stage i's downsampling layer, then its blocks in order.
    parts = name.split('.')
    if parts[0] == 'downsample_layers':
        return (int(parts[1]), -1)
    return (int(parts[1]), int(parts[2]))


def test_steps_follow_the_paper_rows():
    assert ROADMAP_STEPS == PAPER_ROWS
    assert list(ROADMAP_PAPER_GFLOPS) == list(ROADMAP_STEPS)


def test_each_step_changes_one_thing_and_keeps_it():
    specs = [dataclasses.asdict(roadmap_spec(step)) for step in ROADMAP_STEPS]
    for step, before, after in zip(ROADMAP_STEPS[1:], specs, specs[1:]):
        changed = [k for k in after if after[k] != before[k]]
        # The enhanced recipe changes training only, not the network.
        assert len(changed) == (0 if step == 'enhanced_recipe' else 1), (step, changed)
    for key, value in specs[0].items():
        if isinstance(value, bool):
            switched = [s[key] for s in specs]
            assert switched == sorted(switched), f'{key} turns off again'


@pytest.mark.parametrize('step', ROADMAP_STEPS)
def test_every_step_is_a_dense_backbone(step):
    model = ModernizedResNet(step=step).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert len(outs) == 4
    assert [o.shape[1] for o in outs] == model.out_channels
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]  # strides 4, 8, 16, 32
    assert model.num_features == model.out_channels[-1]
    bottleneck = ROADMAP_STEPS.index(step) < ROADMAP_STEPS.index('inverted_bottleneck')
    if bottleneck:
        base = 96 if step == 'width' else 64
        assert model.out_channels == [4 * base, 8 * base, 16 * base, 32 * base]
    else:
        assert model.out_channels == [96, 192, 384, 768]


def test_out_indices_pick_stages():
    model = ModernizedResNet(step='gelu', out_indices=(1, -1)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert model.out_channels == [192, 768]
    assert [o.shape[1:] for o in outs] == [(192, 8, 8), (768, 2, 2)]


def test_last_step_is_convnext_tiny():
    torch.manual_seed(0)
    convnext = ConvNeXt(arch='tiny').eval()
    model = ModernizedResNet(step='separate_downsampling').eval()
    ours, theirs = model.state_dict(), convnext.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    model.load_state_dict(theirs, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), convnext(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert model.final_norm and model.num_features == 768


def test_relu_ablation_keeps_reduced_activations():
    for step in ('fewer_activations', 'fewer_norms', 'separate_downsampling'):
        model = ModernizedResNet(step=step, act_cfg=dict(type='ReLU'))
        kinds = {type(m) for m in model.modules()}
        assert nn.ReLU in kinds and nn.GELU not in kinds, step
    # Default activations follow the step.
    assert not any(isinstance(m, nn.GELU) for m in ModernizedResNet(step='kernel_size').modules())
    assert not any(isinstance(m, nn.ReLU) for m in ModernizedResNet(step='gelu').modules())
    # One activation per block from 'fewer_activations' on: the residual sum is not activated.
    block = ModernizedResNet(step='fewer_activations').stages[0][1]
    x = -torch.ones(1, 96, 8, 8)
    nn.init.zeros_(block.conv3.weight)
    nn.init.zeros_(block.norm3.bias)
    with torch.no_grad():
        assert torch.equal(block.eval()(x), x)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match='resnet50, enhanced_recipe, .*separate_downsampling'):
        ModernizedResNet(step='convnext')
    with pytest.raises(ValueError, match='kernel'):
        ModernizedResNet(step='move_up_dwconv', kernel_size=7)
    with pytest.raises(ValueError, match='odd'):
        ModernizedResNet(step='kernel_size', kernel_size=4)


@pytest.mark.parametrize('step', ['resnet50', 'move_up_dwconv', 'separate_downsampling'])
@pytest.mark.parametrize('num_layers', [6, 12])
@pytest.mark.parametrize('decay_type', ['layer_wise', 'stage_wise'])
def test_layer_ids_rise_with_depth(step, num_layers, decay_type):
    model = ModernizedResNet(step=step)
    # stage_wise puts every downsampling layer in group 0 (the official rule).
    prefixes = ('downsample_layers', 'stages') if decay_type == 'layer_wise' else \
        ('downsample_layers.0.', 'stages')
    names = [n for n, _ in model.named_parameters() if n.startswith(prefixes)]
    ids = [model.get_layer_id(n, num_layers, decay_type) for n in sorted(names, key=_depth_key)]
    assert ids[0] == 0 and ids == sorted(ids)
    assert max(ids) == (num_layers if decay_type == 'layer_wise' else 4)
    assert model.get_layer_id('norm3.weight', num_layers, decay_type) == num_layers + 1


def test_layer_ids_equal_convnext_tiny_on_last_step():
    model = ModernizedResNet(step='separate_downsampling')
    convnext = ConvNeXt(arch='tiny')
    for num_layers in (6, 12):
        for decay_type in ('layer_wise', 'stage_wise'):
            for name, _ in convnext.named_parameters():
                assert model.get_layer_id(name, num_layers, decay_type) == \
                    convnext.get_layer_id(name, num_layers, decay_type), name


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_registry_builds_every_scope(scope):
    from mmengine.registry import DefaultScope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type='ModernizedResNet', step='gelu', out_indices=(3, )))
    assert type(model) is ModernizedResNet and model.step == 'gelu'
    assert model.eval()(torch.randn(1, 3, 32, 32))[0].shape == (1, 768, 1, 1)


def test_frozen_stages_and_norm_eval_survive_train():
    model = ModernizedResNet(step='resnet50', frozen_stages=0, norm_eval=True)
    assert model.train() is model
    assert not any(p.requires_grad for p in model.downsample_layers[0].parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_resnet50_step_has_torchvision_parameters():
    import torchvision  # pinned in requirements/torch.txt
    ours = paper_classifier(dict(type='ModernizedResNet', step='resnet50'))
    reference = torchvision.models.resnet50()
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in reference.parameters())


def test_training_step_with_drop_path_and_checkpointing():
    model = ModernizedResNet(step='fewer_norms', drop_path_rate=0.2, with_cp=True,
                             out_indices=(3, ))
    model.init_weights()
    model.train()
    model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    assert model.stages[0][0].conv1.weight.grad is not None


def _check_gflops(measured, paper):
    assert abs(measured - paper) / paper < 0.02, f'{measured:.3f} G vs paper {paper} G'


@pytest.mark.parametrize('step', [
    pytest.param(s, marks=[] if s in REPRESENTATIVE else [pytest.mark.slow])
    for s in ROADMAP_STEPS
])
def test_gflops_match_the_paper(step):
    _check_gflops(roadmap_gflops(step), ROADMAP_PAPER_GFLOPS[step])


@pytest.mark.slow
@pytest.mark.parametrize('kernel_size', [5, 9, 11])
def test_kernel_size_variants_match_the_paper(kernel_size):
    _check_gflops(roadmap_gflops('kernel_size', kernel_size=kernel_size),
                  ROADMAP_PAPER_KERNEL_GFLOPS[kernel_size])
