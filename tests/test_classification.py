"""Classification sub-tool: configs, timm parity, the recipe's parts, the ImageFolder data."""
import glob
import os.path as osp

import pytest
import timm
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import MODELS
from PIL import Image

import backbones  # noqa: F401
from backbones.datasets import ImageFolderDataset
from backbones.engine import EffectiveBatchRunner, effective_batch_size
from backbones.models import ImageClassifier, convert_classifier_checkpoint, convert_to_official

CLS_DIR = osp.join(REPO, 'configs', 'classification')
CONFIGS = sorted(
    glob.glob(osp.join(CLS_DIR, '*.py')) + glob.glob(osp.join(CLS_DIR, 'roadmap', '*.py')))


def _name(path):
    return osp.relpath(path, CLS_DIR)


def test_every_required_config_exists():
    names = {_name(p) for p in CONFIGS}
    required = {f'convnext_{s}_in1k.py' for s in
                ('atto', 'femto', 'pico', 'nano', 't', 's', 'b', 'l')}
    required |= {f'convnext_{s}_in22k.py' for s in ('t', 's', 'b', 'l', 'xl')}
    required |= {f'convnext_{s}_in22k_ft_in1k.py' for s in ('b', 'l', 'xl')}
    required |= {f'convnext_iso_{s}_in1k.py' for s in ('s', 'b', 'l')}
    required |= {f'roadmap/{step}.py' for step in backbones.ROADMAP_STEPS}
    required |= {'roadmap/fewer_activations_relu.py', 'convnext_atto_shapes.py', 'resnet_shapes.py',
                 'swin_shapes.py'}
    assert required <= names, sorted(required - names)


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.runner_type == 'EffectiveBatchRunner'
    assert cfg.val_evaluator.type == 'TopKAccuracy'
    # Parameters on the meta device: builds XL with a 21841-way head without allocating it
    # (the roadmap's ResNet-50-sized models and the small shapes demo ones, whose MMDetection
    # Swin reads its drop-path rates with .item(), are built for real).
    with torch.device('cpu' if 'roadmap' in path or 'shapes' in path else 'meta'):
        model = MODELS.build(cfg.model)
    assert isinstance(model, ImageClassifier)
    num_classes = cfg.model.head.num_classes
    assert model.head.fc.out_features == num_classes
    mixup = model.data_preprocessor.mixup
    if mixup is not None:
        assert mixup.num_classes == num_classes
    if 'roadmap' in path:
        assert model.backbone.step in backbones.ROADMAP_STEPS
    # The recipe's effective batch: 8 processes reach the batch the lr is written for.
    assert effective_batch_size(cfg, 8 if 'shapes' not in path else 1) == \
        cfg.auto_scale_lr.base_batch_size


def test_roadmap_configs_follow_the_paper():
    resnet = Config.fromfile(osp.join(CLS_DIR, 'roadmap', 'resnet50.py'))
    assert resnet.train_cfg.max_epochs == 90
    assert resnet.optim_wrapper.optimizer.type == 'SGD'
    assert resnet.model.data_preprocessor.mixup is None
    for step in backbones.ROADMAP_STEPS[1:]:
        cfg = Config.fromfile(osp.join(CLS_DIR, 'roadmap', f'{step}.py'))
        assert cfg.model.backbone.step == step
        assert cfg.train_cfg.max_epochs == 300
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
        assert cfg.model.data_preprocessor.mixup.cutmix_alpha == 1.0
    relu = Config.fromfile(osp.join(CLS_DIR, 'roadmap', 'fewer_activations_relu.py'))
    assert relu.model.backbone.step == 'fewer_activations'
    model = MODELS.build(relu.model)
    assert not any(isinstance(m, torch.nn.GELU) for m in model.modules())
    assert any(isinstance(m, torch.nn.ReLU) for m in model.modules())


@pytest.mark.parametrize('accumulation', [1, 4])
def test_lr_is_scaled_by_the_effective_batch(tmp_path, accumulation):
    cfg = Config.fromfile(osp.join(CLS_DIR, 'convnext_t_in1k.py'))
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.batch_size = 16
    cfg.optim_wrapper.accumulative_counts = accumulation
    cfg.model.backbone.arch = 'atto'  # the rule does not depend on the model size
    runner = EffectiveBatchRunner.from_cfg(cfg)
    wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    runner.scale_lr(wrapper, cfg.auto_scale_lr)
    expected = 4e-3 * 16 * accumulation / 4096  # one process
    lrs = {group['lr'] for group in wrapper.param_groups}
    assert len(lrs) == 1 and lrs.pop() == pytest.approx(expected)
    # 1-D parameters (norms, biases, layer scales) get no weight decay, as in the recipe.
    decays = {p.dim(): g['weight_decay'] for g in wrapper.param_groups for p in g['params']}
    assert decays[1] == 0 and decays[2] == 0.05


def _tiny_imagefolder(root, per_class=4, size=48):
    for c, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        for split in ('train', 'val'):
            folder = root / split / f'class{c}'
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.new('RGB', (size, size), colour).save(folder / f'{i}.png')
    return str(root)


def test_recipe_augmentation_gives_mixup_cutmix_soft_targets(tmp_path):
    cfg = Config.fromfile(osp.join(CLS_DIR, 'convnext_t_in1k.py'))
    dataset_cfg = dict(cfg.train_dataloader.dataset)
    dataset_cfg.pop('type')
    dataset_cfg['data_root'] = _tiny_imagefolder(tmp_path)
    dataset_cfg['transform'] = dict(dataset_cfg['transform'], input_size=32)
    dataset = ImageFolderDataset(**dataset_cfg)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])
    assert batch['inputs'].shape == (8, 3, 32, 32)
    preprocessor_cfg = dict(cfg.model.data_preprocessor, num_classes=3)
    preprocessor = MODELS.build(preprocessor_cfg)
    original = batch['inputs'].clone()  # timm mixes in place
    torch.manual_seed(0)
    out = preprocessor(dict(batch), training=True)
    targets = out['data_samples']
    assert targets.shape == (8, 3)
    assert torch.allclose(targets.sum(1), torch.ones(8))
    # Soft: smoothing 0.1 and mixing leave no one-hot row, and mixed images differ.
    assert targets.max() < 1.0 and targets.min() > 0.0
    assert not torch.equal(out['inputs'], original)
    # Evaluation batches are left alone.
    plain = preprocessor(batch, training=False)
    assert torch.equal(plain['data_samples'], batch['data_samples'])


def test_timm_convnext_tiny_logits_match():
    torch.manual_seed(0)
    reference = timm.create_model('convnext_tiny', num_classes=1000).eval()
    # Random but not trivial: non-zero layer scales and norm parameters.
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if name.endswith('gamma') or 'norm' in name:
                p.normal_(1.0 if name.endswith('weight') else 0.0, 0.2)
    model = ImageClassifier(backbone=dict(type='ConvNeXt', arch='tiny'),
                            head=dict(num_classes=1000)).eval()
    missing, unexpected = model.load_state_dict(reference.state_dict(), strict=False)
    assert unexpected == []
    assert all(k.startswith('backbone.norm') for k in missing)  # dense output norms only
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize('fmt', ['official', 'ours'])
def test_classifier_checkpoint_formats_round_trip(fmt):
    torch.manual_seed(0)
    model = ImageClassifier(backbone=dict(type='ConvNeXt', arch='atto'),
                            head=dict(num_classes=7))
    model.init_weights()
    state = model.state_dict()
    if fmt == 'official':
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        state = convert_to_official(state)
        state.update({'norm.weight': model.head.norm.weight, 'norm.bias': model.head.norm.bias,
                      'head.weight': model.head.fc.weight, 'head.bias': model.head.fc.bias})
    converted = convert_classifier_checkpoint({'model': state})
    for key, value in model.state_dict().items():
        if fmt == 'official' and key.startswith('backbone.norm'):
            continue  # official classifiers have no dense output norms
        assert torch.equal(converted[key], value), key


def test_imagefolder_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='make_shapes.py'):
        ImageFolderDataset(str(tmp_path / 'nowhere'))
    root = _tiny_imagefolder(tmp_path / 'data')
    with pytest.raises(ValueError, match='do not match'):
        ImageFolderDataset(root, classes=['class0', 'class1'])
    bad = tmp_path / 'data' / 'train' / 'class1' / '9.png'
    bad.write_bytes(b'not an image')
    dataset = ImageFolderDataset(root, transform=dict(input_size=32))
    index = [p for p, _ in dataset.samples].index(str(bad))
    with pytest.raises(OSError, match='9.png'):
        dataset[index]
    skipping = ImageFolderDataset(root, transform=dict(input_size=32), bad_image='skip')
    assert skipping[index]['inputs'].shape == (3, 32, 32)
    assert skipping.skipped == [str(bad)]


def test_classifier_takes_mmdetections_own_backbones():
    """MMDetection's ResNet and Swin (the demo's comparison backbones) classify through our
    classifier as they are: the last map of their output tuple is pooled; a backbone of theirs
    without head.in_channels is refused by name."""
    resnet = dict(type='mmdet.ResNet', depth=18, base_channels=16, stem_channels=16,
                  out_indices=(0, 1, 2, 3))
    with pytest.raises(ValueError, match='head.in_channels is needed for a ResNet backbone'):
        MODELS.build(dict(type='ImageClassifier', backbone=resnet,
                          head=dict(num_classes=3)))
    model = MODELS.build(dict(type='ImageClassifier', backbone=resnet,
                              head=dict(num_classes=3, in_channels=128, pre_norm=False)))
    images = torch.randn(2, 3, 64, 64)
    last = model.backbone(images)[-1]
    assert last.shape == (2, 128, 2, 2)
    torch.testing.assert_close(model(images), model.head.fc(last.mean((2, 3))))
    loss = model(images, torch.tensor([0, 2]), mode='loss')['loss']
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None
