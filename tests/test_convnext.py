"""ConvNeXt and isotropic ConvNeXt: parity with timm, paper complexity, freezing, checkpointing,
pretrained loading."""
import math
import os.path as osp

import pytest
import timm
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

import backbones
from backbones import (CONVNEXT_ARCHS, ConvNeXt, ConvNeXtIsotropic, convert_checkpoint,
                       convert_to_mmpretrain, convert_to_official)
from backbones.analysis import (CONVNEXT_PAPER_COMPLEXITY, ISOTROPIC_PAPER_COMPLEXITY,
                                preset_complexity)

# Presets whose paper figures are for the ConvNeXt V2 model (GRN, no layer scale).
V2_ONLY = ('atto', 'femto', 'pico', 'nano', 'huge')
SLOW_TIMM = ('convnext_large', 'convnext_xlarge', 'convnextv2_large', 'convnextv2_huge')
TIMM_NAMES = [f'convnext_{a}' for a in CONVNEXT_ARCHS if a != 'huge'
              ] + [f'convnextv2_{a}' for a in CONVNEXT_ARCHS if a != 'xlarge']


def _timm_params():
    for name in TIMM_NAMES:
        marks = [pytest.mark.slow] if name in SLOW_TIMM else []
        yield pytest.param(name, marks=marks, id=name)


def perturb_(model: nn.Module, seed: int = 0) -> None:
    """Give every parameter a random, non-trivial value (timm's layer scale of 1e-6 and GRN's
    zeros would make the residual branches invisible)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.dim() > 1 and param[0].numel() > 1:  # conv / linear: unit-gain weights
                param.copy_(noise / math.sqrt(param[0].numel()))
            elif name.endswith('gamma'):  # layer scale
                param.copy_(0.5 + 0.5 * noise.abs().clamp(max=1))
            elif name.endswith('weight') and 'grn' not in name:  # norm scales
                param.copy_(1 + 0.2 * noise)
            else:  # biases, GRN
                param.copy_(0.3 * noise)


# --------------------------------------------------------------------------------------------
# Parity with timm


@pytest.mark.parametrize('timm_name', list(_timm_params()))
def test_stage_features_match_timm(timm_name):
    arch = timm_name.split('_', 1)[1]
    v2 = timm_name.startswith('convnextv2')
    size = 64 if arch in ('atto', 'femto', 'pico', 'nano', 'tiny') else 32
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False).eval()
    perturb_(reference)
    ours = ConvNeXt(arch, use_grn=v2).eval()
    missing, unexpected = ours.load_state_dict(convert_checkpoint(reference.state_dict()),
                                               strict=False)
    assert unexpected == []
    assert sorted(missing) == sorted(f'norm{i}.{p}' for i in range(4) for p in ('weight', 'bias'))

    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.forward_intermediates(x, intermediates_only=True)
        got = ours.forward_features(x)
        outs = ours(x)
    assert len(got) == len(expected) == 4
    for i, (a, b) in enumerate(zip(got, expected)):
        scale = max(1., b.abs().max().item())
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale, msg=f'stage {i}')
        assert outs[i].shape == a.shape
    # The branches matter: a model without its last stage's residual branches differs.
    assert not torch.allclose(got[-1], ours.downsample_layers[3](got[-2]), atol=1e-2)


# --------------------------------------------------------------------------------------------
# Paper complexity


@pytest.mark.parametrize('arch', list(CONVNEXT_ARCHS))
def test_params_match_paper(arch):
    # The paper's classifier (ImageClassifier over the last stage); meta device: shapes only.
    params = preset_complexity(arch, use_grn=arch in V2_ONLY, flops=False).params_m
    paper = CONVNEXT_PAPER_COMPLEXITY[arch][0]
    assert abs(params - paper) / paper < 0.01, (arch, params, paper)


@pytest.mark.parametrize('arch', list(ISOTROPIC_PAPER_COMPLEXITY))
def test_isotropic_params_match_paper(arch):
    params = preset_complexity(arch, isotropic=True, flops=False).params_m
    paper = ISOTROPIC_PAPER_COMPLEXITY[arch][0]
    # 22.3M for iso-S against the paper's rounded "22M".
    assert abs(params - paper) / paper < 0.02, (arch, params, paper)


@pytest.mark.parametrize('arch', [
    'atto', 'tiny', 'small', 'base',
    pytest.param('large', marks=pytest.mark.slow),
    pytest.param('xlarge', marks=pytest.mark.slow)
])
def test_flops_match_paper(arch):
    measured = preset_complexity(arch).gflops
    # Tiny: the paper's 4.5 is 4.47 measured; the others are given to 3 digits.
    paper = 4.47 if arch == 'tiny' else CONVNEXT_PAPER_COMPLEXITY[arch][1]
    assert abs(measured - paper) / paper < 0.01, (arch, measured, paper)


@pytest.mark.parametrize('arch', ['small', pytest.param('base', marks=pytest.mark.slow)])
def test_isotropic_flops_match_paper(arch):
    measured = preset_complexity(arch, isotropic=True).gflops
    paper = ISOTROPIC_PAPER_COMPLEXITY[arch][1]
    assert abs(measured - paper) / paper < 0.02, (arch, measured, paper)


# --------------------------------------------------------------------------------------------
# Construction and forward


def test_forward_shapes_and_out_indices():
    model = ConvNeXt('atto', out_indices=(-1, 1)).eval()
    assert model.out_indices == (1, 3)
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 80, 8, 8), (2, 320, 2, 2)]


def test_state_dict_names_follow_official():
    model = ConvNeXt('atto')
    keys = set(model.state_dict())
    for key in ('downsample_layers.0.0.weight', 'downsample_layers.0.1.weight',
                'downsample_layers.1.0.weight', 'downsample_layers.1.1.weight',
                'stages.2.5.dwconv.weight', 'stages.2.5.norm.weight', 'stages.2.5.pwconv1.weight',
                'stages.2.5.pwconv2.weight', 'stages.2.5.gamma', 'norm0.weight', 'norm3.bias'):
        assert key in keys, key
    v2 = set(ConvNeXt('atto', use_grn=True).state_dict())
    assert 'stages.0.0.grn.gamma' in v2 and 'stages.0.0.grn.beta' in v2
    assert not any(k.endswith('.gamma') and '.grn.' not in k for k in v2)
    for off in (None, 0.):
        no_ls = ConvNeXt('atto', layer_scale_init_value=off).state_dict()
        assert not any(k.endswith('.gamma') for k in no_ls)


def test_bad_arch_lists_the_valid_names():
    with pytest.raises(ValueError, match='tiny.*small.*base') as info:
        ConvNeXt('gigantic')
    assert 'atto' in str(info.value) and 'gigantic' in str(info.value)
    with pytest.raises(ValueError, match='dims'):
        ConvNeXt(dict(depths=(1, 1, 1, 1)))
    with pytest.raises(ValueError, match='4 stages'):
        ConvNeXt(dict(depths=(1, 1, 1), dims=(8, 16, 32)))
    with pytest.raises(ValueError, match='out_indices'):
        ConvNeXt('atto', out_indices=(4, ))
    with pytest.raises(ValueError, match='small, base, large'):
        ConvNeXtIsotropic('tiny')


def test_dict_arch_and_drop_path_rates():
    model = ConvNeXt(dict(depths=(1, 2, 3, 2), dims=(8, 16, 24, 32)), drop_path_rate=0.7)
    rates = [
        block.drop_path.drop_prob if hasattr(block.drop_path, 'drop_prob') else 0.
        for stage in model.stages for block in stage
    ]
    expected = torch.linspace(0, 0.7, 8).tolist()
    assert rates == pytest.approx(expected)
    assert [len(s) for s in model.stages] == [1, 2, 3, 2]


def test_registered_in_downstream_registries():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    for scope, registry in (('mmdet', MMDET_MODELS), ('mmseg', MMSEG_MODELS)):
        with DefaultScope.overwrite_default_scope(scope):
            assert type(registry.build(dict(type='ConvNeXt', arch='atto'))) is ConvNeXt
            iso = registry.build(dict(type='ConvNeXtIsotropic', arch=dict(depth=2, dim=16)))
            assert type(iso) is ConvNeXtIsotropic


def test_default_init():
    model = ConvNeXt('atto')
    model.init_weights()
    weight = model.stages[2][0].pwconv1.weight
    # Like the official code (timm's trunc_normal_ bounds are +-2 absolute, i.e. 100 std).
    assert 0.018 < weight.std().item() < 0.022
    assert model.stages[2][0].pwconv1.bias.abs().max().item() == 0
    assert model.downsample_layers[0][0].bias.abs().max().item() == 0
    assert torch.all(model.stages[0][0].gamma == 1e-6)


# --------------------------------------------------------------------------------------------
# Freezing and checkpointing


def test_frozen_stages_stay_frozen():
    model = ConvNeXt('atto', frozen_stages=1)
    assert model.train() is model
    frozen = [model.downsample_layers[0], model.downsample_layers[1], model.stages[0],
              model.stages[1], model.norm0, model.norm1]
    trainable = [model.downsample_layers[2], model.stages[2], model.stages[3], model.norm2]
    for module in frozen:
        assert all(not p.requires_grad for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in trainable:
        assert all(p.requires_grad for p in module.parameters())
        assert all(m.training for m in module.modules())
    assert model.eval() is model and not model.stages[3].training
    model.train()
    assert not model.stages[1].training and model.stages[2].training


def test_with_cp_same_outputs_and_grads(monkeypatch):
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls.append(kwargs.get('use_reentrant'))
        return original(*args, **kwargs)

    monkeypatch.setattr(backbones.models.layers.cp, 'checkpoint', counting)
    torch.manual_seed(0)
    plain = ConvNeXt('atto', drop_path_rate=0.2, use_grn=True)
    perturb_(plain)
    ckpt = ConvNeXt('atto', drop_path_rate=0.2, use_grn=True, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(1)  # the same DropPath masks
        outs = model.train()(x)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    assert len(calls) == sum(ConvNeXt('atto').depths) and set(calls) == {False}
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, msg=name)
    # No recomputation at inference.
    calls.clear()
    with torch.no_grad():
        ckpt.eval()(x)
    assert calls == []


# --------------------------------------------------------------------------------------------
# Pretrained loading through init_cfg


@pytest.fixture(scope='module')
def timm_atto():
    """A randomised timm ConvNeXt-V2 atto state dict (1x1-conv MLPs, timm GRN names)."""
    torch.manual_seed(0)
    reference = timm.create_model('convnextv2_atto', pretrained=False)
    perturb_(reference)
    return {k: v.clone() for k, v in reference.state_dict().items()}


@pytest.fixture(scope='module')
def atto_source(timm_atto):
    """The same weights in our layout, plus random output norms."""
    state = convert_checkpoint(timm_atto)
    for i, dim in enumerate((40, 80, 160, 320)):
        state[f'norm{i}.weight'] = torch.rand(dim) + 0.5
        state[f'norm{i}.bias'] = torch.randn(dim)
    return state


def _official_classifier(state):
    """Our weights in the official classification-checkpoint layout."""
    official = {k: v for k, v in convert_to_official(state).items() if not k.startswith('norm')}
    # A final norm unlike a fresh one, to see that it is dropped.
    official.update({'norm.weight': torch.full((320, ), 7.), 'norm.bias': torch.zeros(320),
                     'head.weight': torch.zeros(1000, 320), 'head.bias': torch.zeros(1000)})
    return {'model': official, 'epoch': 10}


def _mmpretrain_classifier(state):
    out = convert_to_mmpretrain({k: v for k, v in state.items() if not k.startswith('norm')})
    out.update({'backbone.norm3.weight': torch.full((320, ), 7.),
                'backbone.norm3.bias': torch.zeros(320),
                'head.fc.weight': torch.zeros(1000, 320), 'head.fc.bias': torch.zeros(1000)})
    return {'state_dict': out, 'meta': {}}


def _detector(state):
    out = {f'backbone.{k}': v for k, v in state.items()}
    out['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 40, 1, 1)
    return {'state_dict': out, 'meta': {'epoch': 3}}


FORMATS = {
    'ours': lambda s: {'state_dict': dict(s)},
    'official': _official_classifier,
    'official_ema': lambda s: {'model_ema': _official_classifier(s)['model']},
    'timm': None,  # the timm state dict itself
    'mmpretrain': _mmpretrain_classifier,
    'detector': _detector,
}


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_init_cfg_pretrained_any_format(fmt, atto_source, timm_atto, tmp_path, monkeypatch):
    path = str(tmp_path / f'{fmt}.pth')
    torch.save(FORMATS[fmt](atto_source) if FORMATS[fmt] else timm_atto, path)
    logs = []
    monkeypatch.setattr(backbones.models.loading, 'print_log',
                        lambda msg, logger=None, level=20: logs.append((level, msg)))
    model = ConvNeXt('atto', use_grn=True, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    state = model.state_dict()
    for key, value in atto_source.items():
        if key.startswith('norm'):
            continue
        torch.testing.assert_close(state[key], value, msg=key)
    warnings = [msg for level, msg in logs if level >= 30]
    if fmt in ('ours', 'detector'):
        torch.testing.assert_close(state['norm2.weight'], atto_source['norm2.weight'])
        assert warnings == []
    else:
        # Output norms are fresh (the classifier's final norm is dropped) and said so calmly.
        assert torch.all(state['norm3.weight'] == 1)
        assert warnings == []
        assert any('norm0.weight' in msg and 'expected' in msg for _, msg in logs)
    assert any(path in msg for _, msg in logs)


def test_init_cfg_wrong_checkpoint_is_an_error(tmp_path):
    import torchvision
    path = str(tmp_path / 'resnet.pth')
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = ConvNeXt('atto', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match='resnet.pth') as info:
        model.init_weights()
    assert 'unrecognised' in str(info.value) and 'bn1.running_mean' in str(info.value)

    # An official isotropic classifier: recognised, but no key fits the dense model.
    iso = str(tmp_path / 'iso.pth')
    iso_state = ConvNeXtIsotropic(dict(depth=2, dim=16)).state_dict()
    official_iso = {k: v for k, v in iso_state.items() if not k.startswith('norm')}
    torch.save({'model': dict(official_iso, **{'head.weight': torch.zeros(2, 16)})}, iso)
    with pytest.raises(ValueError, match='iso.pth.*matches no parameter'):
        ConvNeXt('atto', init_cfg=dict(type='Pretrained', checkpoint=iso)).init_weights()

    # The right format, the wrong size.
    femto = str(tmp_path / 'femto.pth')
    torch.save({'model': ConvNeXt('femto').state_dict()}, femto)
    with pytest.raises(ValueError, match=r'femto.pth.*downsample_layers.0.0.weight.*48.*40'):
        ConvNeXt('atto', init_cfg=dict(type='Pretrained', checkpoint=femto)).init_weights()

    with pytest.raises(FileNotFoundError, match='missing.pth'):
        ConvNeXt('atto', init_cfg=dict(type='Pretrained',
                                       checkpoint=osp.join(tmp_path, 'missing.pth'))).init_weights()


def test_init_cfg_prefix(atto_source, tmp_path):
    path = str(tmp_path / 'det.pth')
    torch.save(_detector(atto_source), path)
    model = ConvNeXt('atto', use_grn=True,
                     init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    torch.testing.assert_close(model.stages[1][0].grn.gamma, atto_source['stages.1.0.grn.gamma'])
    torch.testing.assert_close(model.norm1.weight, atto_source['norm1.weight'])
    # An mmpretrain classifier with the usual prefix: its final norm is still recognised.
    path = str(tmp_path / 'cls.pth')
    torch.save(_mmpretrain_classifier(atto_source), path)
    model = ConvNeXt('atto', use_grn=True,
                     init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    assert torch.all(model.norm3.weight == 1)
    with pytest.raises(ValueError, match="cls.pth.*prefix 'neck.'"):
        ConvNeXt('atto', init_cfg=dict(type='Pretrained', checkpoint=path,
                                       prefix='neck.')).init_weights()


# --------------------------------------------------------------------------------------------
# Isotropic


def test_isotropic_forward_and_presets():
    model = ConvNeXtIsotropic(dict(depth=8, dim=32), drop_path_rate=0.1).eval()
    assert model.out_indices == (1, 3, 5, 7)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 4, 4)] * 4
    assert 'stem.weight' in model.state_dict() and 'blocks.7.pwconv2.weight' in model.state_dict()
    with torch.device('meta'):
        small, large = ConvNeXtIsotropic('small'), ConvNeXtIsotropic('large')
        assert ConvNeXtIsotropic('small', layer_scale_init_value=1e-6).blocks[0].gamma is not None
    assert small.out_indices == (3, 8, 12, 17) and small.blocks[0].gamma is None
    assert large.depth == 36 and large.dim == 1024 and large.blocks[0].gamma is not None


def test_isotropic_frozen_and_official_checkpoint(tmp_path):
    model = ConvNeXtIsotropic(dict(depth=4, dim=16), out_indices=(1, 3), frozen_stages=1)
    model.train()
    assert not model.stem.weight.requires_grad and not model.norm1.weight.requires_grad
    assert not model.blocks[1].training and model.blocks[2].training
    assert model.norm3.weight.requires_grad

    source = ConvNeXtIsotropic(dict(depth=4, dim=16), out_indices=(3, ))
    perturb_(source)
    official = {k: v for k, v in source.state_dict().items() if not k.startswith('norm')}
    official.update({'norm.weight': torch.ones(16), 'norm.bias': torch.zeros(16),
                     'head.weight': torch.zeros(10, 16), 'head.bias': torch.zeros(10)})
    path = str(tmp_path / 'iso.pth')
    torch.save({'model': official}, path)
    target = ConvNeXtIsotropic(dict(depth=4, dim=16), out_indices=(3, ),
                               init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    torch.testing.assert_close(target.blocks[2].pwconv1.weight, source.blocks[2].pwconv1.weight)
