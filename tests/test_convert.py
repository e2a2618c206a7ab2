"""Checkpoint conversion: official <-> ours <-> mmpretrain, timm, wrappers, idempotence, the
converter tool."""
import os.path as osp

import pytest
import torch
from conftest import load_tool, run_tool

import backbones  # noqa: F401
from backbones import (ConvNeXt, ConvNeXtIsotropic, convert_checkpoint, convert_to_mmpretrain,
                       convert_to_official, detect_format, unwrap_state_dict)

ARCH = dict(depths=(1, 2, 2, 1), dims=(8, 16, 24, 32))


def synthetic(use_grn: bool, seed: int = 0) -> dict:
    """Our state dict of a small V1 or V2 model with random values."""
    with torch.device('meta'):
        shapes = {k: v.shape for k, v in ConvNeXt(ARCH, use_grn=use_grn).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) for k, shape in shapes.items()}


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


def without_output_norms(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith('norm')}


@pytest.mark.parametrize('use_grn', [False, True], ids=['v1', 'v2'])
def test_round_trips(use_grn):
    ours = synthetic(use_grn)
    official = convert_to_official(ours)
    assert set(official) == set(ours)  # same names...
    if use_grn:  # ...and the official GRN shape
        assert official['stages.0.0.grn.gamma'].shape == (1, 1, 1, 32)
        assert ours['stages.0.0.grn.gamma'].shape == (32, )
    assert detect_format(official) == 'official'
    assert_same(convert_checkpoint(official), ours)

    mmpretrain = convert_to_mmpretrain(ours)
    assert 'backbone.stages.1.1.depthwise_conv.weight' in mmpretrain
    assert 'backbone.stages.1.1.pointwise_conv2.bias' in mmpretrain
    assert 'backbone.norm2.weight' in mmpretrain
    assert_same(convert_checkpoint(mmpretrain), ours)
    assert_same(convert_checkpoint(convert_to_mmpretrain(official)), ours)
    assert_same(convert_to_official(convert_checkpoint(mmpretrain)), official)


@pytest.mark.parametrize('use_grn', [False, True], ids=['v1', 'v2'])
def test_official_classifier_checkpoint(use_grn):
    ours = synthetic(use_grn)
    official = without_output_norms(convert_to_official(ours))
    final_w, final_b = torch.randn(32), torch.randn(32)
    official.update({'norm.weight': final_w, 'norm.bias': final_b,
                     'head.weight': torch.randn(1000, 32), 'head.bias': torch.randn(1000)})
    converted = convert_checkpoint({'model': official, 'optimizer': {}, 'epoch': 299})
    # Heads always go; the final (post-pooling) norm goes by default, like the official code.
    assert_same(converted, without_output_norms(ours))
    kept = convert_checkpoint({'model': official}, keep_final_norm=True)
    assert torch.equal(kept['norm3.weight'], final_w) and torch.equal(kept['norm3.bias'], final_b)


def test_mmpretrain_classifier_final_norm():
    ours = synthetic(True)
    classifier = convert_to_mmpretrain(without_output_norms(ours))
    classifier.update({'backbone.norm3.weight': torch.ones(32),
                       'backbone.norm3.bias': torch.zeros(32),
                       'head.fc.weight': torch.zeros(5, 32), 'head.fc.bias': torch.zeros(5)})
    assert_same(convert_checkpoint({'state_dict': classifier}), without_output_norms(ours))
    assert 'norm3.weight' in convert_checkpoint(classifier, keep_final_norm=True)
    # Without a classification head, norm3 is a dense output norm and stays.
    dense = convert_to_mmpretrain(ours)
    assert_same(convert_checkpoint(dense), ours)


def test_mmpretrain_conv_pointwise_layers():
    ours = synthetic(False)
    mmpretrain = convert_to_mmpretrain(ours)
    for key in list(mmpretrain):
        if 'pointwise_conv' in key and key.endswith('weight'):  # linear_pw_conv=False
            mmpretrain[key] = mmpretrain[key][:, :, None, None]
    assert_same(convert_checkpoint(mmpretrain), ours)


def test_timm_names_and_shapes():
    ours = synthetic(True)
    timm_state = {}
    for key, value in ours.items():
        if key.startswith('norm'):
            continue
        new = key.replace('downsample_layers.0.', 'stem.')
        if key.startswith('downsample_layers.') and not key.startswith('downsample_layers.0.'):
            _, i, rest = key.split('.', 2)
            new = f'stages.{i}.downsample.{rest}'
        if key.startswith('stages.'):
            _, i, j, rest = key.split('.', 3)
            rest = (rest.replace('dwconv', 'conv_dw').replace('pwconv', 'mlp.fc')
                    .replace('grn.gamma', 'mlp.grn.weight').replace('grn.beta', 'mlp.grn.bias'))
            new = f'stages.{i}.blocks.{j}.{rest}'
        if 'mlp.fc' in new and new.endswith('weight'):
            value = value[:, :, None, None]  # conv_mlp
        if 'grn' in new:
            value = value.reshape(1, -1, 1, 1)  # NCHW GRN of older timm
        timm_state[new] = value
    timm_state.update({'head.norm.weight': torch.ones(32), 'head.norm.bias': torch.zeros(32),
                       'head.fc.weight': torch.zeros(3, 32), 'head.fc.bias': torch.zeros(3)})
    assert detect_format(timm_state) == 'timm'
    assert_same(convert_checkpoint(timm_state), without_output_norms(ours))
    assert 'norm3.weight' in convert_checkpoint(timm_state, keep_final_norm=True)


def test_wrappers_and_prefixes():
    ours = synthetic(False)
    ddp = {f'module.{k}': v for k, v in ours.items()}
    assert_same(convert_checkpoint({'state_dict': ddp, 'meta': {'epoch': 1}}), ours)
    detector = {f'backbone.{k}': v for k, v in ours.items()}
    detector['neck.fpn_convs.0.conv.weight'] = torch.zeros(4, 4, 3, 3)
    detector['rpn_head.rpn_cls.bias'] = torch.zeros(3)
    assert_same(convert_checkpoint({'state_dict': detector}), ours)
    assert_same(convert_checkpoint({'model_ema': ours}), ours)
    assert_same(unwrap_state_dict({'model': {'state_dict': ours}}), ours)


def test_idempotent():
    for obj in (synthetic(True), convert_to_official(synthetic(True)),
                convert_to_mmpretrain(synthetic(False))):
        once = convert_checkpoint(obj)
        twice = convert_checkpoint(once)
        assert list(twice) == list(once)
        assert all(twice[k] is once[k] for k in once)  # the same tensors, untouched


def test_isotropic_official_format():
    with torch.device('meta'):
        shapes = {k: v.shape for k, v in ConvNeXtIsotropic(dict(depth=3, dim=8),
                                                           out_indices=(2, )).state_dict().items()}
    ours = {k: torch.randn(s) for k, s in shapes.items()}
    official = without_output_norms(ours)
    official.update({'norm.weight': torch.ones(8), 'norm.bias': torch.zeros(8),
                     'head.weight': torch.zeros(10, 8), 'head.bias': torch.zeros(10)})
    assert detect_format(official) == 'official_isotropic'
    assert_same(convert_checkpoint({'model': official}), without_output_norms(ours))
    assert 'norm2.weight' in convert_checkpoint(official, keep_final_norm=True)
    assert_same(convert_to_official(ours), ours)
    with pytest.raises(ValueError, match='mmpretrain has no isotropic'):
        convert_to_mmpretrain(ours)


def test_unrecognised_format_lists_keys():
    with pytest.raises(ValueError, match="unrecognised.*'conv1.weight'.*'fc.bias'"):
        convert_checkpoint({'conv1.weight': torch.zeros(1), 'fc.bias': torch.zeros(1)})
    with pytest.raises(ValueError, match='no tensors'):
        convert_checkpoint({'meta': {'epoch': 1}})


def _load_tool():
    return load_tool('model_converters', 'convert_convnext.py')


@pytest.mark.parametrize('fmt', ['ours', 'official', 'mmpretrain'])
def test_tool_in_process(fmt, tmp_path):
    tool = _load_tool()
    ours = synthetic(True)
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    torch.save({'model': convert_to_official(ours)}, src)
    assert tool.main([src, dst, '--format', fmt]) == 0
    saved = torch.load(dst, weights_only=True)
    assert list(saved) == [{'ours': 'state_dict', 'official': 'model',
                            'mmpretrain': 'state_dict'}[fmt]]
    assert_same(convert_checkpoint(saved), ours)


def test_tool_errors_name_the_file(tmp_path):
    tool = _load_tool()
    bad = str(tmp_path / 'bad.pth')
    torch.save({'fc.weight': torch.zeros(2, 2)}, bad)
    with pytest.raises(SystemExit, match='bad.pth.*unrecognised'):
        tool.main([bad, str(tmp_path / 'out.pth')])
    with pytest.raises(SystemExit, match='nowhere.pth'):
        tool.main([str(tmp_path / 'nowhere.pth'), str(tmp_path / 'out.pth')])


def test_tool_runs_as_a_script(tmp_path):
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    torch.save({'state_dict': synthetic(False)}, src)
    proc = run_tool(['tools/model_converters/convert_convnext.py', src, dst, '--format',
                     'mmpretrain'])
    assert 'official format' in proc.stdout and osp.isfile(dst)
