"""weights_only stays on: MMEngine checkpoints load, pickles that would run code are refused."""
import json
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from conftest import MakesAFile, run_tool
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

import backbones  # noqa: F401
from backbones.engine import (CorruptCheckpointError, UnsafeCheckpointError, load_checkpoint_file,
                              remove_stale_temporaries, save_checkpoint_atomic)

# torch's advice for a refused global, which must not reach the user for a hostile file.
TORCH_ADVICE = ('add_safe_globals', 'safe_globals(', 'allowlist', 'weights_only` set to `False')


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
        with pytest.raises(UnsafeCheckpointError) as info:
            load_checkpoint_file(str(path))
        msg = str(info.value)
        # What was refused and why come first (torch's zip format and a raw pickle alike) ...
        assert msg.startswith(f"Refusing to load checkpoint '{path}': it asks the unpickler for "
                              'io.open, which is not on the allow-list of data-only classes'), msg
        assert 'could run code' in msg and 'Do not allow-list io.open' in msg
        # ... and nothing suggests allow-listing it, neither in our text nor as a printed cause.
        assert not any(advice in msg for advice in TORCH_ADVICE), msg
        assert info.value.__cause__ is None and info.value.__suppress_context__
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
            # The run ends with our sentence, and torch's allow-listing advice is not printed.
            last = proc.stderr.strip().splitlines()[-1]
            assert last.startswith('backbones.checkpoint.io.UnsafeCheckpointError: '
                                   f"Refusing to load checkpoint '{path}': it asks the "
                                   'unpickler for io.open'), proc.stderr[-3000:]
            assert not any(advice in proc.stderr for advice in TORCH_ADVICE), proc.stderr
    assert not marker.exists()


# Loads a checkpoint with plain torch in a fresh interpreter, where nothing of the toolkit (nor
# MMEngine) is imported, and prints its message hub's loss history.
PLAIN_LOAD = """
import json, sys, torch
ckpt = torch.load(sys.argv[1], weights_only=True)
assert not {'backbones', 'mmengine'} & set(m.split('.')[0] for m in sys.modules)
hub = ckpt['message_hub']
print(json.dumps([hub['log_scalars']['train/loss'], hub['runtime_info'], ckpt['meta']]))
"""


def _hub_state(name):
    hub = MessageHub.get_instance(name)
    for v in (3.0, 2.0, 0.1 + 0.2):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 3)
    hub.update_info('eta', np.float64(12.5))  # what MMEngine's logger stores there
    return hub


def test_checkpoint_loads_with_plain_torch_and_no_import(tmp_path):
    hub = _hub_state('plain-save')
    path = tmp_path / 'iter_3.pth'
    save_checkpoint_atomic({'message_hub': hub.state_dict(), 'meta': dict(seed=np.int64(7)),
                            'state_dict': {'w': torch.ones(2)}}, str(path))
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, '-c', PLAIN_LOAD, str(path)], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loss, info, meta = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loss == dict(log_history=[3.0, 2.0, 0.1 + 0.2], count_history=[1, 1, 1],
                        max_length=hub.get_scalar('train/loss').max_length)
    assert info == dict(iter=3, eta=12.5) and meta == dict(seed=7)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []

    # Resuming turns the plain history back into the same buffer, value for value.
    resumed = MessageHub.get_instance('plain-load')
    resumed.load_state_dict(load_checkpoint_file(str(path))['message_hub'])
    buf, ref = resumed.get_scalar('train/loss'), hub.get_scalar('train/loss')
    assert isinstance(buf, HistoryBuffer)
    for got, want in zip(buf.data, ref.data):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert buf.mean() == ref.mean() and resumed.get_info('iter') == 3


def test_checkpoint_of_an_earlier_version_still_resumes(tmp_path):
    # Earlier versions pickled the HistoryBuffer itself (from plain lists): still allow-listed.
    hub = _hub_state('old-save')
    path = tmp_path / 'old.pth'
    torch.save({'message_hub': hub.state_dict()}, path)
    with zipfile.ZipFile(path) as zf:
        assert b'HistoryBuffer' in zf.read(next(n for n in zf.namelist() if n.endswith('.pkl')))
    loaded = load_checkpoint_file(str(path))['message_hub']
    assert isinstance(loaded['log_scalars']['train/loss'], HistoryBuffer)
    resumed = MessageHub.get_instance('old-load')
    resumed.load_state_dict(loaded)
    assert resumed.get_scalar('train/loss').current() == 0.1 + 0.2


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


# Holds an exclusive flock on argv[1] (as save_checkpoint_atomic does on its temporary file)
# until it is killed: a save in progress in another process.
HOLD_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], 'r+b')
fcntl.flock(f, fcntl.LOCK_EX)
print('locked', flush=True)
time.sleep(600)
"""


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    stale = tmp_path / '.iter_20.pth.k2j_x9a0.tmp'  # what a kill during a save leaves
    stale.write_bytes(b'PK' * 1000)
    busy = tmp_path / '.iter_30.pth.abcd1234.tmp'
    busy.write_bytes(b'PK')
    # Near misses of the name, a folder and a link with the name: not ours, never removed.
    kept = ['iter_20.pth', '.notes.tmp', 'iter_20.pth.k2j_x9a0.tmp', '.iter_20.pth.tmp',
            '.iter_20.pth.k2j_x9a0.tmp.bak', '.data.json.k2j_x9a0.tmp', '.iter_2.pth.ABCDEFGH.tmp',
            'outside.bin']
    for name in kept:
        (tmp_path / name).write_text('not ours')
    (tmp_path / '.iter_1.pth.abcdefgh.tmp').mkdir()
    (tmp_path / '.iter_3.pth.abcdefgh.tmp').symlink_to(tmp_path / 'outside.bin')
    kept += ['.iter_1.pth.abcdefgh.tmp', '.iter_3.pth.abcdefgh.tmp']

    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(busy)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        assert remove_stale_temporaries(str(tmp_path)) == [(str(stale), 2000)]
        assert busy.exists()  # its writer is alive
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    # Its writer killed, the kernel dropped the lock: now it is stale too.
    assert remove_stale_temporaries(str(tmp_path)) == [(str(busy), 2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_temporaries(str(tmp_path / 'no_such_dir')) == []


def test_a_save_in_progress_is_not_a_stale_temporary(tmp_path):
    seen = []

    class LooksMidSave:
        """Pickled while torch.save writes the temporary file: looks for stale ones then."""

        def __reduce__(self):
            seen.append(sorted(p.name for p in tmp_path.iterdir()))
            seen.append(remove_stale_temporaries(str(tmp_path)))
            return (int, (0,))

    save_checkpoint_atomic({'x': LooksMidSave()}, str(tmp_path / 'iter_1.pth'))
    assert len(seen[0]) == 1 and seen[0][0].startswith('.iter_1.pth.')  # the temporary ...
    assert seen[1] == []  # ... locked by its writer, so left alone
    assert [p.name for p in tmp_path.iterdir()] == ['iter_1.pth']
