"""Checkpoint formats beyond the official/timm/mmpretrain ones, each checked against its producer:
Hugging Face transformers (ConvNeXt, ConvNeXt V2, UperNet; saved by ``save_pretrained``),
safetensors files and model directories, and ConvNeXt V2 FCMAE pre-training checkpoints."""
import json
import os.path as osp

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from conftest import REPO, MakesAFile
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import load_checkpoint

import backbones  # noqa: F401
from backbones import convert_checkpoint, detect_format, load_pretrained, split_checkpoint
from backbones.engine import CorruptCheckpointError, UnsafeCheckpointError, load_checkpoint_file
from backbones.models.convert import convert_dense_model_checkpoint

transformers = pytest.importorskip('transformers')

DEPTHS, DIMS = (1, 1, 1, 1), (8, 16, 32, 64)
ARCH = dict(depths=DEPTHS, dims=DIMS)
NUM_CLASSES = 5
# Max abs differences measured on this machine (2-core x86 CPU, fp32, after `randomize`): our
# feature maps equal transformers' bit for bit (0.0), and so do the classifier logits when both
# post-pooling LayerNorms have the same eps. They do not by default: transformers' is
# `layer_norm_eps` = 1e-12, ours (and the official code's, whose weights the HF hub converted)
# 1e-6, a fixed part of LinearClsHead, not a config knob. That moves the logits (~1.4 here) by
# about eps / (2 var) of the pooled features, relatively: 3.9e-6 (V1, var 0.17) and 8.3e-7 (V2,
# var 1.2) measured; real checkpoints pool features of far larger variance. UperNet-T logits (up
# to ~1.8) differ by 1.3e-6, its auxiliary head by 7.7e-7 (other op order in the heads).
LOGIT_TOL = 2e-5  # covers the eps difference down to a pooled variance of ~0.03
FEATURE_TOL = 1e-5
UPERNET_TOL = 2e-5


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values in every parameter and BN statistic, so that a mix-up of any two tensors
    shows (transformers' init leaves GRN at zero and layer scale at 1e-6: blocks near identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=gen)
            if name.endswith('running_var'):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif tensor.dim() > 1 and tensor.shape[1] > 1:  # conv / linear: fan-in scaled
                tensor.copy_(noise / tensor[0].numel() ** 0.5)
            else:  # norms around 1, biases, layer scale, GRN, BN means around 0
                tensor.copy_(noise * 0.2 + (1 if name.endswith('norm.weight') else 0))
    return model.eval()


def images(size: int, n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def hf_config(v2: bool, **kwargs):
    cls = transformers.ConvNextV2Config if v2 else transformers.ConvNextConfig
    return cls(depths=list(DEPTHS), hidden_sizes=list(DIMS), **kwargs)


def our_classifier(v2: bool):
    return MODELS.build(dict(type='ImageClassifier',
                             backbone=dict(type='ConvNeXt', arch=ARCH, use_grn=v2),
                             head=dict(num_classes=NUM_CLASSES))).eval()


@pytest.mark.parametrize('v2', [False, True], ids=['v1', 'v2'])
def test_hf_classifier(v2, tmp_path):
    cls = (transformers.ConvNextV2ForImageClassification if v2 else
           transformers.ConvNextForImageClassification)
    hf = randomize(cls(hf_config(v2, num_labels=NUM_CLASSES)))
    hf.save_pretrained(tmp_path / 'hf')
    x = images(64)
    with torch.no_grad():
        expected = hf(pixel_values=x).logits
    state = hf.state_dict()
    assert split_checkpoint(state).fmt == 'hf'
    sources = {
        'directory': load_checkpoint_file(tmp_path / 'hf'),
        'state dict': state,
        'safetensors': load_checkpoint_file(tmp_path / 'hf' / 'model.safetensors'),
    }
    for source, weights in sources.items():
        ours = our_classifier(v2)
        missing, unexpected = ours.load_state_dict(weights, strict=False)
        # Only the dense output norms, which a classifier does not have (they stay identity).
        assert sorted(missing) == [f'backbone.norm{i}.{p}' for i in range(4)
                                   for p in ('bias', 'weight')], source
        assert unexpected == [], source
        with torch.no_grad():
            diff = max_diff(ours(x), expected)
        assert diff < LOGIT_TOL, (source, diff)
    # With transformers' eps set to ours, nothing but float rounding is left.
    hf_eps = randomize(cls(hf_config(v2, num_labels=NUM_CLASSES, layer_norm_eps=1e-6)))
    ours = our_classifier(v2)
    ours.load_state_dict(hf_eps.state_dict(), strict=False)
    with torch.no_grad():
        assert max_diff(ours(x), hf_eps(pixel_values=x).logits) < 1e-6
    # load_from / tools/test.py: MMEngine's loader on the directory itself.
    ours = our_classifier(v2)
    load_checkpoint(ours, str(tmp_path / 'hf'), map_location='cpu')
    with torch.no_grad():
        assert max_diff(ours(x), expected) < LOGIT_TOL


@pytest.mark.parametrize('v2', [False, True], ids=['v1', 'v2'])
def test_hf_backbone_through_init_cfg(v2, tmp_path):
    cls = transformers.ConvNextV2Backbone if v2 else transformers.ConvNextBackbone
    hf = randomize(cls(hf_config(v2, out_features=['stage1', 'stage2', 'stage3', 'stage4'])))
    hf.save_pretrained(tmp_path / 'hf')
    ours = MODELS.build(dict(type='ConvNeXt', arch=ARCH, use_grn=v2,
                             init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'hf'))))
    ours.init_weights()
    ours.eval()
    x = images(64)
    with torch.no_grad():
        expected = hf(pixel_values=x).feature_maps
        got = ours(x)
    assert len(got) == len(expected) == 4
    for i, (a, b) in enumerate(zip(got, expected)):
        assert max_diff(a, b) < FEATURE_TOL, i
    # Every tensor found its place, output norms (hidden_states_norms) included.
    assert load_pretrained(ours, str(tmp_path / 'hf')) == ([], [])


def _hf_upernet():
    backbone = transformers.ConvNextConfig(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768],
                                           out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    config = transformers.UperNetConfig(backbone_config=backbone, num_labels=150, hidden_size=512,
                                        auxiliary_channels=256, use_auxiliary_head=True)
    return randomize(transformers.UperNetForSemanticSegmentation(config))


def _our_upernet():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'segmentation', 'upernet_convnext_t_ade20k.py'))
    init_default_scope('mmseg')
    cfg.model.backbone.pop('init_cfg')
    for head in ('decode_head', 'auxiliary_head'):  # SyncBN needs a process group; same names
        cfg.model[head].norm_cfg = dict(type='BN', requires_grad=True)
    from mmseg.registry import MODELS as SEG_MODELS
    return SEG_MODELS.build(cfg.model).eval()


def test_hf_upernet_into_our_config(tmp_path):
    hf = _hf_upernet()
    hf.save_pretrained(tmp_path / 'hf')
    state = convert_dense_model_checkpoint(load_checkpoint_file(tmp_path / 'hf'))
    ours = _our_upernet()
    ours.load_state_dict(state, strict=True)
    x = images(128, n=1)
    size = tuple(x.shape[2:])
    metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
    with torch.no_grad():
        expected = hf(pixel_values=x).logits
        got = ours.encode_decode(x, metas)
        aux_expected = hf.auxiliary_head(hf.backbone(x).feature_maps)
        aux_got = ours.auxiliary_head(ours.extract_feat(x))
    diff = max_diff(got, expected)
    assert diff < UPERNET_TOL, diff
    assert max_diff(aux_got, aux_expected) < UPERNET_TOL
    # The same directory as a backbone's init_cfg: its backbone. part, output norms included.
    backbone = MODELS.build(dict(type='ConvNeXt', arch='tiny'))
    assert load_pretrained(backbone, str(tmp_path / 'hf')) == ([], [])
    assert torch.equal(backbone.norm2.weight, hf.backbone.hidden_states_norms.stage3.weight)
    # The saved directory straight into tools/test.py's runner (load_from; exact fit check).
    from test_release_checkpoints import bare, tool_runner
    config = osp.join(REPO, 'configs', 'segmentation', 'upernet_convnext_t_ade20k.py')
    runner = tool_runner(config, tmp_path / 'hf', tmp_path / 'work')
    runner.load_checkpoint(str(tmp_path / 'hf'))
    loaded = bare(runner.model).state_dict()
    assert torch.equal(loaded['decode_head.conv_seg.weight'], hf.decode_head.classifier.weight)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    # Idempotent, and the identity on our own names (same keys, same tensors).
    for already in (state, ours.state_dict()):
        again = convert_dense_model_checkpoint(already)
        assert list(again) == list(already)
        assert all(again[k] is already[k] for k in already)


def _synthetic_backbone(use_grn: bool, seed: int = 0) -> dict:
    with torch.device('meta'):
        shapes = {k: v.shape for k, v in MODELS.build(
            dict(type='ConvNeXt', arch=ARCH, use_grn=use_grn)).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=gen) for k, s in shapes.items()}


def test_dense_model_checkpoint_keeps_norms_and_other_keys():
    from backbones import convert_to_mmpretrain
    ours = _synthetic_backbone(True)
    rest = {'neck.fpn_convs.0.conv.weight': torch.zeros(4, 4, 3, 3),
            'decode_head.conv_seg.weight': torch.zeros(3, 4, 1, 1)}
    detector = {**{f'backbone.{k}': v for k, v in ours.items()}, **rest}
    mmpretrain = {**convert_to_mmpretrain(ours), **rest}
    assert 'backbone.stages.0.0.depthwise_conv.weight' in mmpretrain
    for source in (detector, mmpretrain, {'state_dict': mmpretrain, 'meta': {}}):
        converted = convert_dense_model_checkpoint(source)
        assert sorted(converted) == sorted(detector)
        assert all(torch.equal(converted[k], detector[k]) for k in detector)
        assert 'backbone.norm3.weight' in converted
    # A backbone of no known format passes through unchanged.
    resnet = {'backbone.conv1.weight': torch.zeros(1), 'decode_head.conv_seg.bias': torch.zeros(1)}
    assert convert_dense_model_checkpoint(resnet) == resnet


def test_safetensors_files_and_directories(tmp_path):
    state = _synthetic_backbone(False)
    path = tmp_path / 'ours.safetensors'
    safetensors.torch.save_file(state, str(path))
    model = MODELS.build(dict(type='ConvNeXt', arch=ARCH,
                              init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    # Recognised by its header under another name (a cache that renamed the download).
    (tmp_path / 'renamed.ckpt').write_bytes(path.read_bytes())
    assert load_checkpoint_file(tmp_path / 'renamed.ckpt').keys() == state.keys()
    # Truncated: CorruptCheckpointError naming the file, suffix or not.
    data = path.read_bytes()
    (tmp_path / 'cut.safetensors').write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='cut.safetensors'):
        load_checkpoint_file(tmp_path / 'cut.safetensors')
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='cut.pth'):
        load_checkpoint_file(tmp_path / 'cut.pth')
    # A directory without weights names itself and what was looked for.
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'config.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match=r"empty.*model\.safetensors.*pytorch_model\.bin"):
        load_checkpoint_file(tmp_path / 'empty')


def test_sharded_and_pickled_model_directories(tmp_path):
    hf = randomize(transformers.ConvNextForImageClassification(hf_config(False, num_labels=3)))
    hf.save_pretrained(tmp_path / 'sharded', max_shard_size='100KB')
    index = json.loads((tmp_path / 'sharded' / 'model.safetensors.index.json').read_text())
    assert len(set(index['weight_map'].values())) > 1  # really sharded
    loaded = load_checkpoint_file(tmp_path / 'sharded')
    expected = hf.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    # pytorch_model.bin (what transformers wrote before safetensors): loaded weights-only.
    (tmp_path / 'bin').mkdir()
    torch.save(expected, tmp_path / 'bin' / 'pytorch_model.bin')
    assert load_checkpoint_file(tmp_path / 'bin').keys() == expected.keys()
    marker = tmp_path / 'pwned'
    torch.save({'w': MakesAFile(str(marker))}, tmp_path / 'bin' / 'pytorch_model.bin')
    with pytest.raises(UnsafeCheckpointError, match='pytorch_model.bin'):
        load_checkpoint_file(tmp_path / 'bin')
    assert not marker.exists()
    # An index must not reach outside its folder.
    index['weight_map'] = {k: '../elsewhere.safetensors' for k in index['weight_map']}
    (tmp_path / 'sharded' / 'model.safetensors.index.json').write_text(json.dumps(index))
    with pytest.raises(CorruptCheckpointError, match='not a file name'):
        load_checkpoint_file(tmp_path / 'sharded')


# FCMAE: MinkowskiEngine does not install here, so the checkpoint is built from a dense model
# by the layout MinkowskiEngine documents: a conv kernel holds one (C_in, C_out) matrix (a (C,)
# row for depthwise convs) per offset, offsets enumerated with the first spatial axis fastest
# (its kernel-region tests: [0,0,-2], [0,1,-2], [0,2,-2], [0,0,-1], ...), centred for odd sizes,
# in [0, k) for even ones; an (N, C, H, W) map becomes coordinates (n, h, w).
def _offsets(k: int):
    lo = -(k // 2) if k % 2 else 0
    return [(lo + dh, lo + dw) for dw in range(k) for dh in range(k)]  # dh fastest


def _to_sparse_kernel(weight: torch.Tensor) -> torch.Tensor:
    k = weight.shape[-1]
    rows = [(dh, dw) for dw in range(k) for dh in range(k)]
    if weight.shape[1] == 1:  # depthwise (C, 1, k, k) -> (k*k, C)
        return torch.stack([weight[:, 0, dh, dw] for dh, dw in rows])
    return torch.stack([weight[:, :, dh, dw].t() for dh, dw in rows])  # (k*k, C_in, C_out)


def _sparse_conv(x: torch.Tensor, kernel: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """MinkowskiEngine's convolution on a fully occupied map: out_u = sum_i W_i x_{u+i}, with
    absent (outside) coordinates contributing nothing."""
    n, c, h, w = x.shape
    out_h, out_w = h // stride, w // stride
    out = None
    for row, (dh, dw) in zip(kernel, _offsets(k)):
        shifted = x.new_zeros(n, c, out_h, out_w)
        for i in range(out_h):
            for j in range(out_w):
                hh, ww = i * stride + dh, j * stride + dw
                if 0 <= hh < h and 0 <= ww < w:
                    shifted[:, :, i, j] = x[:, :, hh, ww]
        term = (torch.einsum('nchw,c->nchw', shifted, row) if row.dim() == 1 else
                torch.einsum('nchw,co->nohw', shifted, row))
        out = term if out is None else out + term
    return out


def test_sparse_kernel_layout_matches_conv2d():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 6, 6, generator=gen)
    dw = torch.randn(4, 1, 7, 7, generator=gen)
    down = torch.randn(5, 4, 2, 2, generator=gen)
    fcmae = {'encoder.stages.0.0.dwconv.kernel': _to_sparse_kernel(dw),
             'encoder.downsample_layers.1.1.kernel': _to_sparse_kernel(down)}
    # What a MinkowskiEngine conv computes with these kernels is conv2d with ours.
    dense = split_checkpoint(fcmae).backbone
    torch.testing.assert_close(_sparse_conv(x, fcmae['encoder.stages.0.0.dwconv.kernel'], 7, 1),
                               F.conv2d(x, dense['stages.0.0.dwconv.weight'], padding=3, groups=4))
    torch.testing.assert_close(_sparse_conv(x, fcmae['encoder.downsample_layers.1.1.kernel'], 2, 2),
                               F.conv2d(x, dense['downsample_layers.1.1.weight'], stride=2))
    assert torch.equal(dense['stages.0.0.dwconv.weight'], dw)


def _fcmae_checkpoint(ours: dict) -> dict:
    """The FCMAE state dict of our V2 weights, under the names of the official code
    (models/fcmae.py: encoder, proj, mask_token, decoder, pred; models/convnextv2_sparse.py and
    models/utils.py: MinkowskiLayerNorm's ``ln``, MinkowskiLinear's ``linear``, kernels and
    ``(1, C)`` biases and GRN parameters)."""
    out = {}
    for key, value in ours.items():
        if key.startswith('norm'):  # FCMAE has no output norms
            continue
        parts = key.split('.')
        sparse_layer = key.startswith('stages.') or (key.startswith('downsample_layers.')
                                                     and parts[1] != '0')
        if sparse_layer and parts[-2] in ('dwconv', '1') and parts[-1] == 'weight':
            key, value = key[:-len('weight')] + 'kernel', _to_sparse_kernel(value)
        elif sparse_layer and parts[-1] == 'bias' and parts[-2] in ('dwconv', '1'):
            value = value.reshape(1, -1)
        elif sparse_layer and parts[-2] in ('norm', '0'):
            key = '.'.join(parts[:-1] + ['ln', parts[-1]])
        elif sparse_layer and parts[-2] in ('pwconv1', 'pwconv2'):
            key = '.'.join(parts[:-1] + ['linear', parts[-1]])
        elif parts[-2] == 'grn':
            value = value.reshape(1, -1)
        out['encoder.' + key] = value
    gen = torch.Generator().manual_seed(3)
    out.update({'proj.weight': torch.randn(16, 64, 1, 1, generator=gen),
                'proj.bias': torch.randn(16, generator=gen),
                'mask_token': torch.zeros(1, 16, 1, 1),
                'decoder.0.dwconv.weight': torch.randn(16, 1, 7, 7, generator=gen),
                'decoder.0.grn.gamma': torch.zeros(1, 1, 1, 64),
                'pred.weight': torch.randn(3 * 32 * 32, 16, 1, 1, generator=gen),
                'pred.bias': torch.zeros(3 * 32 * 32)})
    return out


def test_fcmae_checkpoint(tmp_path):
    ours = _synthetic_backbone(True, seed=2)
    fcmae = _fcmae_checkpoint(ours)
    for key, shape in (('encoder.stages.1.0.dwconv.kernel', (49, 16)),
                       ('encoder.stages.1.0.dwconv.bias', (1, 16)),
                       ('encoder.stages.1.0.norm.ln.weight', (16, )),
                       ('encoder.stages.1.0.pwconv1.linear.weight', (64, 16)),
                       ('encoder.stages.1.0.grn.gamma', (1, 64)),
                       ('encoder.downsample_layers.1.0.ln.weight', (8, )),
                       ('encoder.downsample_layers.1.1.kernel', (4, 8, 16)),
                       ('encoder.downsample_layers.1.1.bias', (1, 16)),
                       ('encoder.downsample_layers.0.0.weight', (8, 3, 4, 4))):
        assert tuple(fcmae[key].shape) == shape, key
    assert detect_format(fcmae) == 'fcmae'
    converted = convert_checkpoint({'model': fcmae, 'epoch': 1599})
    dense = {k: v for k, v in ours.items() if not k.startswith('norm')}
    assert sorted(converted) == sorted(dense)  # the decoder is gone
    assert all(torch.equal(converted[k], v) for k, v in dense.items())
    again = convert_checkpoint(converted)
    assert all(again[k] is converted[k] for k in converted)
    # Through a file and init_cfg, the encoder computes what the dense model computes.
    path = tmp_path / 'convnextv2_atto_1k_224_fcmae.pt'
    torch.save({'model': fcmae, 'epoch': 1599}, path)
    model = MODELS.build(dict(type='ConvNeXt', arch=ARCH, use_grn=True,
                              init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    reference = MODELS.build(dict(type='ConvNeXt', arch=ARCH, use_grn=True))
    reference.load_state_dict(ours)
    x = images(64)
    with torch.no_grad():
        for a, b in zip(model.eval().forward_features(x), reference.eval().forward_features(x)):
            assert torch.equal(a, b)


def test_unknown_format_lists_keys():
    with pytest.raises(ValueError, match=r"unrecognised.*'conv1\.weight'.*Hugging Face"):
        convert_checkpoint({'conv1.weight': torch.zeros(1), 'fc.bias': torch.zeros(1)})
