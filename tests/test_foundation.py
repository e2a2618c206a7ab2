"""Registries, config checks and the environment set-up."""
import os.path as osp
import subprocess
import sys
import time
import zipfile

import pytest
import torch
from conftest import REPO
from mmengine.config import Config

import backbones  # noqa: F401
from backbones.engine import (fetch_pretrained, prepare_distributed, revert_sync_bn_if_single,
                              validate_cfg_options)

REGISTRY_CFG = """
custom_imports = dict(imports=['backbones'], allow_failed_imports=False)
model = dict(type='ConvNeXt', arch='atto', out_indices=(1, 3))
"""


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_custom_imports_register_into_downstream_registries(scope):
    cfg = Config.fromstring(REGISTRY_CFG, '.py')
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    assert type(model) is backbones.ConvNeXt
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [80, 320]
    # mmpretrain's name space stays separate from ours.
    assert registry.get('ConvNeXt') is backbones.ConvNeXt


def test_missing_pretrained_checkpoint_names_path_and_producer():
    cfg = Config(dict(model=dict(backbone=dict(type='ConvNeXt', init_cfg=dict(
        type='Pretrained', checkpoint='checkpoints/convnext_tiny_1k_224.pth')))))
    with pytest.raises(FileNotFoundError) as e:
        fetch_pretrained(cfg)
    msg = str(e.value)
    assert "'checkpoints/convnext_tiny_1k_224.pth'" in msg
    assert 'model.backbone.init_cfg.checkpoint' in msg
    assert 'configs/classification/convnext_t_in1k.py' in msg
    assert 'zoo://convnext_tiny_1k_224' in msg and 'tools/download.py' in msg


def test_cfg_option_typo_names_the_key():
    cfg = Config(dict(model=dict(backbone=dict(drop_path_rate=0.1))))
    validate_cfg_options(cfg, {'model.backbone.drop_path_rate': 0.2})
    with pytest.raises(KeyError, match="model.backbone has no key 'drop_path_rat'"):
        validate_cfg_options(cfg, {'model.backbone.drop_path_rat': 0.2})


def test_syncbn_falls_back_to_bn_on_one_process():
    cfg = Config(dict(model=dict(roi_head=dict(bbox_head=[dict(norm_cfg=dict(
        type='SyncBN', requires_grad=True))]))))
    revert_sync_bn_if_single(cfg, distributed=False)
    assert cfg.model.roi_head.bbox_head[0].norm_cfg.type == 'BN'


def test_amp_config_runs_fp32_on_cpu():
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                         optimizer=dict(type='AdamW', lr=1e-4))))
    prepare_distributed(cfg, 'none')
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else 'OptimWrapper'
    assert cfg.optim_wrapper.type == expected


def test_package_builds_as_a_wheel(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(tmp_path), REPO], check=True,
                   capture_output=True)
    (wheel, ) = tmp_path.glob('convnext_dense-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    assert 'backbones/__init__.py' in names and 'backbones/checkpoint/io.py' in names


def test_setup_is_idempotent_and_fast():
    start = time.time()
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', 'setup_env.sh')], capture_output=True,
                          text=True, check=True)
    assert time.time() - start < 30
    assert 'reusing' in proc.stderr
    assert osp.realpath(proc.stdout.strip().splitlines()[-1]) == osp.realpath(sys.prefix)
