"""The backbone contract (backbones.models.base.Backbone), checked on every registered backbone.

A new backbone class registered in MMEngine's MODELS must get an entry in CASES (a small
instance of it), or test_every_registered_backbone_has_a_case fails.
"""
import pytest
import torch
from mmengine.registry import MODELS
from timm.layers import DropPath

import backbones  # noqa: F401  (registers every backbone)
from backbones.models import Backbone

#: Small instances of every registered backbone: (type, kwargs) per case id.
CASES = {
    'ConvNeXt atto': ('ConvNeXt', dict(arch='atto')),
    'ConvNeXt V2 custom': ('ConvNeXt', dict(arch=dict(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32)),
                                            use_grn=True)),
    'ConvNeXtIsotropic': ('ConvNeXtIsotropic', dict(arch=dict(depth=4, dim=32))),
    'ModernizedResNet resnet50': ('ModernizedResNet', dict(step='resnet50')),
    'ModernizedResNet inverted_bottleneck': ('ModernizedResNet',
                                             dict(step='inverted_bottleneck')),
    'ModernizedResNet layer_norm': ('ModernizedResNet', dict(step='layer_norm')),
    'ModernizedResNet separate_downsampling': ('ModernizedResNet',
                                               dict(step='separate_downsampling')),
}
SIZE = 64


def build(case, **overrides):
    kind, kwargs = CASES[case]
    torch.manual_seed(0)
    return MODELS.build(dict(type=kind, **kwargs, **overrides))


def test_every_registered_backbone_has_a_case():
    registered = {name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, Backbone)}
    assert registered == {kind for kind, _ in CASES.values()}


@pytest.mark.parametrize('case', CASES)
def test_shapes_layout_and_stages(case):
    model = build(case).eval()
    assert len(model.dims) == model.num_stages and model.num_features == model.dims[-1]
    assert isinstance(model.final_norm, bool)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        features = model.forward_features(x)
        outs = model(x)
    assert len(features) == model.num_stages
    assert len(outs) == len(model.out_indices)
    assert model.out_channels == [model.dims[i] for i in model.out_indices]
    for i, f in enumerate(features):
        assert f.shape[:2] == (2, model.dims[i]) and f.is_contiguous(), (i, f.shape, f.stride())
    for i, o in zip(model.out_indices, outs):
        assert o.shape == features[i].shape and o.is_contiguous()


@pytest.mark.parametrize('case', CASES)
def test_arch_and_out_indices_are_checked(case):
    model = build(case, out_indices=(-1, ))
    assert model.out_indices == (model.num_stages - 1, )
    with pytest.raises(ValueError, match='out of range'):
        build(case, out_indices=(model.num_stages, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        build(case, frozen_stages=model.num_stages)
    if type(model).ARCHS:
        with pytest.raises(ValueError, match='valid names: ' + ', '.join(type(model).ARCHS)):
            MODELS.build(dict(type=CASES[case][0], arch='no-such-arch'))


@pytest.mark.parametrize('case', CASES)
def test_drop_path_rises_linearly_to_the_rate(case):
    model = build(case, drop_path_rate=0.3)
    rates = [m.drop_prob for m in model.modules() if isinstance(m, DropPath)]
    assert rates and rates == sorted(rates)
    assert max(rates) == pytest.approx(0.3)


@pytest.mark.parametrize('case', CASES)
def test_frozen_stages_stay_frozen_through_train(case):
    model = build(case, frozen_stages=1)
    model.train()
    for stage in (0, 1):
        for module in model.stage_modules(stage):
            assert not module.training
            assert not any(p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for m in model.stage_modules(2) for p in m.parameters())


@pytest.mark.parametrize('case', CASES)
def test_pretrained_init_loads_a_checkpoint(case, tmp_path):
    source = build(case)
    source.init_weights()
    path = str(tmp_path / 'detector.pth')
    # As a detector checkpoint would hold it: under state_dict, with the backbone. prefix.
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in source.state_dict().items()}),
               path)
    target = build(case, init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, msg=key)


@pytest.mark.parametrize('case', CASES)
def test_layer_ids_cover_the_decay_range(case):
    model = build(case)
    num_layers = 6
    ids = {name: model.get_layer_id(name, num_layers) for name, _ in model.named_parameters()}
    assert set(ids.values()) <= set(range(num_layers + 2))
    assert min(ids.values()) == 0  # the stem
    first_stage = [i for n, i in ids.items() if n.startswith(('stages.0.', 'blocks.0.'))]
    last_stage = [i for n, i in ids.items()
                  if n.startswith((f'stages.{model.num_stages - 1}.',
                                   f'blocks.{model.num_stages - 1}.'))]
    assert max(first_stage) <= min(last_stage)
