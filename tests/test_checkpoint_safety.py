"""weights_only stays on: MMEngine checkpoints load, pickles that would run code are refused."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from conftest import MakesAFile, run_tool
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

import backbones  # noqa: F401
from backbones.engine import (CorruptCheckpointError, UnsafeCheckpointError, load_checkpoint_file,
                              save_checkpoint_atomic)


class _GetattrGadget:
    """Reaches a method of an allow-listed class through ``builtins.getattr``: refused."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def _evil_files(tmp_path):
    marker = tmp_path / 'pwned'
    zip_ckpt = tmp_path / 'evil_zip.pth'
    torch.save({'state_dict': {}, 'meta': MakesAFile(str(marker))}, zip_ckpt)
    raw_ckpt = tmp_path / 'evil_raw.pth'
    with open(raw_ckpt, 'wb') as f:
        pickle.dump({'state_dict': MakesAFile(str(marker))}, f)
    return marker, [zip_ckpt, raw_ckpt]


def test_malicious_pickles_are_refused(tmp_path):
    marker, files = _evil_files(tmp_path)
    for path in files:
        with pytest.raises(UnsafeCheckpointError, match=str(path.name)):
            load_checkpoint_file(str(path))
        # The loader MMEngine uses for load_from, init_cfg and resume goes through ours.
        with pytest.raises(UnsafeCheckpointError):
            _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_getattr_gadget_is_refused(tmp_path):
    path = tmp_path / 'gadget.pth'
    torch.save({'x': _GetattrGadget()}, path)
    with pytest.raises(UnsafeCheckpointError, match='allow-list'):
        load_checkpoint_file(str(path))


@pytest.mark.slow
def test_resume_from_malicious_checkpoint_is_refused(tmp_path, toy_config):
    marker, files = _evil_files(tmp_path)
    for path in files:
        for flag in (['--resume', str(path)], ['--cfg-options', f'load_from={path}']):
            proc = run_tool(['tools/train.py', toy_config, '--work-dir', str(tmp_path / 'w'),
                             *flag], check=False)
            assert proc.returncode != 0
            assert 'UnsafeCheckpointError' in proc.stderr
            assert f"Refusing to load checkpoint '{path}'" in proc.stderr
    assert not marker.exists()


def test_message_hub_round_trips_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('ckpt-test')
    for v in (3.0, 2.0, 1.5):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 3)
    path = tmp_path / 'hub.pth'
    save_checkpoint_atomic({'message_hub': hub.state_dict()}, str(path))
    loaded = torch.load(path, weights_only=True)['message_hub']
    buf = loaded['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(6.5 / 3)
    assert buf.current() == 1.5 and loaded['runtime_info']['iter'] == 3


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint_atomic({'state_dict': {'w': torch.randn(64, 64)}}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='epoch_1.pth'):
        load_checkpoint_file(str(path))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


def test_atomic_save_keeps_previous_file_on_failure(tmp_path):
    path = tmp_path / 'latest.pth'
    save_checkpoint_atomic({'v': torch.tensor(1)}, str(path))

    class Unpicklable:

        def __reduce__(self):
            raise OSError(28, 'No space left on device')

    with pytest.raises(OSError, match='previous checkpoint files are untouched'):
        save_checkpoint_atomic({'v': Unpicklable()}, str(path))
    assert torch.load(path, weights_only=True)['v'].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ['latest.pth']  # no temp file left
    assert not osp.exists(str(path) + '.tmp')
