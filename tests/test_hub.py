"""Fetching released checkpoints through the real download path: a real HTTP server on
127.0.0.1 (tests/checkpoint_server.py), real files, real processes; nothing leaves the machine."""
import argparse
import hashlib
import json
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import pytest
import torch
from checkpoint_server import CheckpointServer
from conftest import REPO, MakesAFile, load_tool, run_tool, tool_env
from mmengine.config import Config

import backbones  # noqa: F401  (installs the fetching loaders)
from backbones import ConvNeXt
from backbones.analysis.paper import load_paper, paper_metrics
from backbones.checkpoint.hub import (CheckpointDownloadError, UnsafeCheckpointError, cache_dir,
                                      download, resolve_checkpoint)
from backbones.engine import fetch_pretrained
from backbones.models.convert import convert_to_mmpretrain
from backbones.zoo import MIRROR_ENV, ZOO_FILE, Zoo, load_zoo, mirrored

ATTO = dict(arch='atto')


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / 'cache'
    monkeypatch.setenv('CONVNEXT_CHECKPOINT_DIR', str(folder))
    return folder


@pytest.fixture
def served(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    with CheckpointServer(root) as server:
        yield server


def _closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _atto_state(seed=0):
    torch.manual_seed(seed)
    return ConvNeXt(**ATTO).state_dict()


def _save(server, rel, obj):
    path = osp.join(server.root, rel)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(obj, path)
    return path


# -- the zoo table --------------------------------------------------------------------------


def test_zoo_lists_the_releases_with_official_urls():
    zoo = load_zoo()
    tasks = {t: len(zoo.select(t))
             for t in ('classification', 'pretraining', 'detection', 'segmentation')}
    # 7 COCO and 6 ADE20K models; 8 FCMAE pre-trainings; the ImageNet classifiers.
    assert tasks == dict(classification=45, pretraining=8, detection=7, segmentation=6)
    assert all(e.url.startswith(zoo.base_url) for e in zoo)
    assert zoo.base_url == 'https://dl.fbaipublicfiles.com/convnext/'
    assert len({e.url for e in zoo}) == len(zoo)
    for entry in zoo:
        if entry.config_path:
            assert osp.isfile(osp.join(REPO, entry.config_path)), entry.name
        if entry.backbone:
            assert zoo.get(entry.backbone).task == 'classification'


def test_zoo_figures_agree_with_the_paper():
    paper = load_paper()
    zoo = load_zoo()
    checked = 0
    for entry in zoo.select('classification'):
        preset = paper['backbones'].get(entry.arch, {})
        # paper.json: V1 top-1 at 224 (EMA for 1K), V2 sizes' FCMAE + 1K fine-tuned top-1.
        key = {'in1k': 'in1k', 'in22k_ft_in1k': 'in22k_ft_in1k'}.get(entry.pretrain)
        if (entry.v2 and entry.pretrain == 'fcmae_in1k' and preset.get('use_grn')) or (
                not entry.v2 and key and entry.ema == (key == 'in1k') and entry.resolution == 224
                and not entry.name.startswith('convnext_iso')):
            key = key or 'in1k'
            if key in preset.get('top1', {}):
                assert entry.top1 == preset['top1'][key], entry.name
                checked += 1
    assert checked >= 11
    for entry in zoo.select('detection') + zoo.select('segmentation'):
        metrics = paper_metrics(entry)
        assert set(metrics) >= ({'box_ap', 'mask_ap'} if entry.task == 'detection'
                                else {'miou'}), entry.name
    assert paper_metrics(zoo.get('cascade_convnext_t')) == dict(box_ap=50.4, mask_ap=43.7)


def test_zoo_names_and_bad_files(tmp_path):
    zoo = load_zoo()
    entry = zoo.get('convnext_tiny_1k_224')
    for name in ('zoo://convnext_tiny_1k_224', entry.url, 'convnext_tiny_1k_224.pth'):
        assert zoo.get(name) is entry
    assert zoo.get('upernet_convnext_t').config == 'upernet_convnext_t_ade20k'
    with pytest.raises(KeyError, match='closest: convnext_tiny_1k_224'):
        zoo.get('convnext_tiny_1k_225')
    bad = tmp_path / 'zoo.json'
    bad.write_text(json.dumps({'models': {'x': {'task': 'detection', 'url': 'u'}}}))
    with pytest.raises(ValueError, match=r"zoo.json', entry 'x': missing fields"):
        Zoo(str(bad))


def test_mirror_replaces_the_base_url(monkeypatch):
    url = load_zoo().get('cascade_mask_rcnn_convnext_tiny_1k_3x').url
    assert mirrored(url) == url
    monkeypatch.setenv(MIRROR_ENV, 'http://mirror.lan/convnext/')
    assert mirrored(url) == ('http://mirror.lan/convnext/coco/'
                             'cascade_mask_rcnn_convnext_tiny_1k_3x.pth')
    other = 'https://download.openmmlab.com/x.pth'
    assert mirrored(other) == other  # only the zoo's base is mirrored


# -- downloading ----------------------------------------------------------------------------


def test_first_download_then_cache_hit(served, cache):
    state = _atto_state()
    _save(served, 'convnext/a.pth', dict(model=state))
    url = served.url('convnext/a.pth')
    path = download(url, progress=False)
    assert path == str(cache / 'a.pth') and served.gets['convnext/a.pth'] == 1
    assert os.listdir(cache) == ['.a.pth.lock', 'a.pth']  # no temporary left
    model = ConvNeXt(**ATTO)
    missing, unexpected = backbones.load_pretrained(model, url)  # from the cache now
    assert served.gets['convnext/a.pth'] == 1 and not unexpected
    assert torch.equal(model.stages[3][0].pwconv2.weight, state['stages.3.0.pwconv2.weight'])


def test_sha256_is_checked(served, cache):
    path = _save(served, 'b.pth', {'w': torch.ones(3)})
    good = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    with pytest.raises(CheckpointDownloadError, match='SHA-256'):
        download(served.url('b.pth'), sha256='0' * 64, progress=False)
    assert not cache.exists() or os.listdir(cache) == ['.b.pth.lock']
    assert osp.isfile(download(served.url('b.pth'), sha256=good, progress=False))


def test_truncated_transfer_leaves_nothing(served, cache):
    _save(served, 'c.pth', dict(model=_atto_state()))
    served.truncate['c.pth'] = 100_000
    with pytest.raises(CheckpointDownloadError) as e:
        download(served.url('c.pth'), progress=False)
    assert 'broke off after 100000 of' in str(e.value)
    assert os.listdir(cache) == ['.c.pth.lock']  # neither c.pth nor a partial file
    served.truncate.clear()
    assert osp.isfile(download(served.url('c.pth'), progress=False))


def test_http_404_and_no_server_name_url_cache_and_mirror(served, cache):
    url = served.url('missing.pth')
    with pytest.raises(CheckpointDownloadError) as e:
        download(url, progress=False)
    msg = str(e.value)
    assert 'HTTP 404' in msg and repr(url) in msg
    assert repr(str(cache / 'missing.pth')) in msg and MIRROR_ENV in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__
    dead = f'http://127.0.0.1:{_closed_port()}/x.pth'
    with pytest.raises(CheckpointDownloadError, match='cannot be reached'):
        download(dead, progress=False)


def test_hostile_pickle_is_refused_and_not_cached(served, cache, tmp_path):
    marker = tmp_path / 'pwned'
    with open(osp.join(served.root, 'evil.pth'), 'wb') as f:
        pickle.dump({'state_dict': MakesAFile(str(marker))}, f)
    torch.save({'state_dict': MakesAFile(str(marker))}, osp.join(served.root, 'evil2.pth'))
    for name in ('evil.pth', 'evil2.pth'):
        with pytest.raises(UnsafeCheckpointError, match='Nothing was cached'):
            download(served.url(name), progress=False)
        assert not (cache / name).exists()
    assert not marker.exists()
    assert sorted(os.listdir(cache)) == ['.evil.pth.lock', '.evil2.pth.lock']


def test_two_processes_download_once(served, cache):
    _save(served, 'd.pth', dict(model=_atto_state()))
    served.delay = 0.02  # a ~5 s transfer: the second process starts while the first downloads
    code = ('import sys, time; from backbones.checkpoint.hub import download; start = time.time(); '
            'print(start, download(sys.argv[1], progress=False))')
    env = tool_env(CONVNEXT_CHECKPOINT_DIR=str(cache))
    procs = [subprocess.Popen([sys.executable, '-c', code, served.url('d.pth')], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    starts, paths = zip(*(o.split() for o, _ in outs))
    assert set(paths) == {str(cache / 'd.pth')}
    # Both asked while the one transfer was under way: the second waited for the first.
    assert served.gets['d.pth'] == 1 and max(map(float, starts)) < served.finished['d.pth']
    assert sum('Downloading' in err for _, err in outs) == 1


def test_resolve_keeps_a_local_file_and_names_the_zoo_entry(tmp_path):
    local = tmp_path / 'convnext_tiny_1k_224.pth'
    torch.save({'w': torch.ones(1)}, local)
    assert resolve_checkpoint(str(local)) == str(local)
    with pytest.raises(FileNotFoundError, match='zoo://convnext_tiny_1k_224'):
        resolve_checkpoint(str(tmp_path / 'nope' / 'convnext_tiny_1k_224.pth'))


def test_cache_defaults_to_the_torch_hub_cache(monkeypatch, tmp_path):
    monkeypatch.delenv('CONVNEXT_CHECKPOINT_DIR', raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'th'))
    assert cache_dir() == osp.join(torch.hub.get_dir(), 'checkpoints')
    assert cache_dir().startswith(str(tmp_path / 'th'))


# -- formats through the download path -----------------------------------------------------


def test_zoo_name_and_mirror_load_every_backbone_format(served, cache, monkeypatch):
    """One served file per backbone format, loaded by URL / zoo name via the real download."""
    state = _atto_state(1)
    official = _save(served, 'convnext/official.pth', dict(model=state))
    mmpretrain = _save(served, 'convnext/mmpretrain.pth',
                       dict(state_dict=convert_to_mmpretrain(state), meta=dict(epoch=3)))
    import timm
    timm_model = timm.create_model('convnextv2_atto', pretrained=False)
    timm_file = _save(served, 'convnext/timm.pth', timm_model.state_dict())
    for path in (official, mmpretrain, timm_file):
        model = ConvNeXt(**ATTO, use_grn=path == timm_file)
        backbones.load_pretrained(model, served.url(osp.relpath(path, served.root)))
        if path == timm_file:
            assert torch.equal(model.stages[0][0].dwconv.weight,
                               timm_model.stages[0].blocks[0].conv_dw.weight)
        else:
            assert torch.equal(model.stages[2][1].dwconv.weight, state['stages.2.1.dwconv.weight'])
    # zoo://NAME through a mirror: the file name is the official one, the host the mirror's.
    entry = load_zoo().get('convnextv2_atto_1k_224_ema')
    rel = entry.url[len(load_zoo().base_url):]
    _save(served, 'convnext/' + rel, dict(model=timm_model.state_dict()))
    monkeypatch.setenv(MIRROR_ENV, served.url('convnext'))
    model = ConvNeXt(**ATTO, use_grn=True)
    backbones.load_pretrained(model, 'zoo://convnextv2_atto_1k_224_ema')
    assert (cache / entry.filename).is_file() and served.gets['convnext/' + rel] == 1


def test_safetensors_hf_and_fcmae_files_by_url(served, cache):
    """A safetensors file of ours, a transformers ConvNeXt V2 state dict and an FCMAE
    pre-training checkpoint, each fetched and loaded by URL."""
    from safetensors.torch import save_file
    from test_checkpoint_formats import _fcmae_checkpoint
    from transformers import ConvNextV2Config, ConvNextV2Model
    state = _atto_state(2)
    save_file(state, osp.join(served.root, 'ours.safetensors'))
    model = ConvNeXt(**ATTO)
    backbones.load_pretrained(model, served.url('ours.safetensors'))
    assert torch.equal(model.stages[1][0].pwconv1.weight, state['stages.1.0.pwconv1.weight'])
    torch.manual_seed(0)
    hf = ConvNextV2Model(ConvNextV2Config(depths=[2, 2, 6, 2], hidden_sizes=[40, 80, 160, 320]))
    _save(served, 'hf.pth', hf.state_dict())
    model = ConvNeXt(**ATTO, use_grn=True)
    backbones.load_pretrained(model, served.url('hf.pth'))
    assert torch.equal(model.stages[3][1].dwconv.weight,
                       hf.encoder.stages[3].layers[1].dwconv.weight)
    v2 = ConvNeXt(**ATTO, use_grn=True).state_dict()
    # As the official pre-training saved it: the weights under 'model', its arguments beside.
    _save(served, 'fcmae.pt', dict(model=_fcmae_checkpoint(v2), epoch=1599,
                                   args=argparse.Namespace(model='convnextv2_atto', lr=1.5e-4)))
    model = ConvNeXt(**ATTO, use_grn=True)
    backbones.load_pretrained(model, served.url('fcmae.pt'))
    assert torch.equal(model.stages[2][0].dwconv.weight, v2['stages.2.0.dwconv.weight'])
    assert sorted(os.listdir(cache))[-3:] == ['fcmae.pt', 'hf.pth', 'ours.safetensors']


def test_isotropic_zoo_format_by_url(served, cache):
    from backbones import ConvNeXtIsotropic
    torch.manual_seed(0)
    src = ConvNeXtIsotropic(arch=dict(depth=2, dim=96))
    _save(served, 'iso.pth', dict(model=src.state_dict()))
    dst = ConvNeXtIsotropic(arch=dict(depth=2, dim=96))
    backbones.load_pretrained(dst, served.url('iso.pth'))
    assert torch.equal(dst.blocks[1].pwconv1.weight, src.blocks[1].pwconv1.weight)


# -- the tools ------------------------------------------------------------------------------


def test_train_fetches_the_configs_backbone_through_the_mirror(served, tmp_path):
    """The headline command: the Cascade ConvNeXt-T config, unchanged, with the zoo's base URL
    pointed at the local server. The file is fetched before any data is read (there is no COCO
    here, which is where the run stops)."""
    rel = 'convnext_tiny_1k_224.pth'
    _save(served, 'mirror/' + rel, dict(model=_atto_state()))
    cache = tmp_path / 'cache'
    proc = run_tool(['tools/train.py', 'configs/detection/cascade_convnext_t_coco.py',
                     '--work-dir', str(tmp_path / 'work')], check=False, timeout=600,
                    CONVNEXT_CHECKPOINT_DIR=str(cache),
                    **{MIRROR_ENV: served.url('mirror/')})
    assert proc.returncode != 0
    assert f'Downloading {served.url("mirror/" + rel)} to {cache / rel}' in proc.stderr
    assert (cache / rel).is_file() and served.gets['mirror/' + rel] == 1
    assert 'data/coco' in proc.stderr[-3000:]  # what stopped it: the data, after the fetch


def test_train_offline_says_what_to_do(tmp_path):
    cache = tmp_path / 'cache'
    mirror = f'http://127.0.0.1:{_closed_port()}/convnext/'
    proc = run_tool(['tools/train.py', 'configs/detection/cascade_convnext_t_coco.py',
                     '--work-dir', str(tmp_path / 'work')], check=False, timeout=600,
                    CONVNEXT_CHECKPOINT_DIR=str(cache), **{MIRROR_ENV: mirror})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('backbones.checkpoint.hub.CheckpointDownloadError: could not download '
                           f"checkpoint '{mirror}convnext_tiny_1k_224.pth'"), last
    assert 'https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth' in last
    assert repr(str(cache / 'convnext_tiny_1k_224.pth')) in last and MIRROR_ENV in last
    assert 'urllib' not in proc.stderr  # our message, not a traceback from urllib


def test_fetch_pretrained_walks_init_cfg_lists(served, cache):
    _save(served, 'e.pth', {'w': torch.ones(1)})
    cfg = Config(dict(model=dict(backbone=dict(init_cfg=[
        dict(type='Normal', layer='Conv2d'),
        dict(type='Pretrained', checkpoint=served.url('e.pth'))]))))
    fetch_pretrained(cfg)
    assert (cache / 'e.pth').is_file()


def test_download_tool_lists_and_fetches(served, cache, capsys):
    download_tool = load_tool('download.py')
    download_tool.main(['--list'])
    listing = capsys.readouterr().out
    for entry in load_zoo():
        assert entry.name in listing
    download_tool.main(['--list', '--task', 'detection'])
    dets = capsys.readouterr().out
    assert 'cascade_mask_rcnn_convnext_tiny_1k_3x' in dets and 'convnext_tiny_1k_224 ' not in dets
    assert 'box_ap=50.4 mask_ap=43.7' in dets
    with pytest.raises(SystemExit) as e:
        download_tool.main(['convnext_tiny_1k_225'])
    assert e.value.code == 2 and 'closest: convnext_tiny_1k_224' in capsys.readouterr().err
    for rel in ('convnext_tiny_1k_224.pth', 'ade20k/upernet_convnext_tiny_1k_512x512.pth'):
        _save(served, 'm/' + rel, {'w': torch.ones(1)})
    proc = run_tool(['tools/download.py', 'convnext_tiny_1k_224', 'upernet_convnext_t'],
                    CONVNEXT_CHECKPOINT_DIR=str(cache), **{MIRROR_ENV: served.url('m')})
    assert proc.stdout.split() == [
        'convnext_tiny_1k_224', str(cache / 'convnext_tiny_1k_224.pth'),
        'upernet_convnext_tiny_1k_512x512', str(cache / 'upernet_convnext_tiny_1k_512x512.pth')]
    assert ZOO_FILE.endswith(osp.join('backbones', 'data', 'zoo.json'))
