"""Safe checkpoint I/O for MMEngine 0.10.7 on torch >= 2.6.

torch.load defaults to ``weights_only=True`` since torch 2.6, and we keep it on: a checkpoint
from a stranger must never run code. What stood between that and MMEngine's ``--resume``:

* MMEngine saves the message hub's log history as ``HistoryBuffer`` objects (numpy arrays
  inside) and numpy scalars in its runtime info. We write the history as plain lists
  (:func:`plain_checkpoint`) and numbers as Python numbers, so a toolkit checkpoint holds
  nothing but tensors and builtin data: ``torch.load(path, weights_only=True)`` reads it in a
  fresh interpreter with nothing imported, and ``MessageHub.load_state_dict`` turns the lists
  back into buffers on resume. Checkpoints written by earlier versions hold ``HistoryBuffer``
  and numpy globals; those data-only classes stay allow-listed for them (``HistoryBuffer``
  pickles through a ``__reduce__`` of plain lists, never ``builtins.getattr``, which would let
  a pickle reach attributes of any allow-listed object).

Everything else a pickle asks for is refused with :class:`UnsafeCheckpointError`, naming the
file and what it asked for, without torch's advice to allow-list it. Saving is atomic
(temporary file + ``os.replace``) so a kill mid-save never leaves a truncated checkpoint under
the final name; the temporary file it leaves instead is removed by
:func:`remove_stale_temporaries` when the next run starts.
"""
import argparse
import collections
import fcntl
import io
import json
import os
import os.path as osp
import pickle
import pickletools
import re
import stat
import tempfile
import zipfile
from typing import Any, List, Tuple

import numpy as np
import safetensors
import safetensors.torch
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mme_checkpoint

from backbones.utils import is_remote


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asks to unpickle something outside the allow-list."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or is not a checkpoint at all."""


def _numpy_globals():
    core = np._core if hasattr(np, '_core') else np.core
    found = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes through their per-type classes (numpy.dtypes.Float64DType...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return found


def _history_buffer_reduce(self):
    # Plain lists and an int: no numpy, no bound methods in the pickle.
    return (HistoryBuffer, (self._log_history.tolist(), self._count_history.tolist(),
                            self.max_length))


#: Exactly the classes a toolkit checkpoint may reference beyond tensors and builtin containers
#: (the ones that checkpoints written before plain message-hub data still hold).
# argparse.Namespace: the official ConvNeXt / V2 scripts save their arguments beside the weights.
ALLOWED_GLOBALS = tuple([HistoryBuffer, argparse.Namespace] + _numpy_globals())

_PLAIN_HISTORY_KEYS = {'log_history', 'count_history', 'max_length'}


def _plain_values(obj: Any) -> Any:
    """``obj`` with numpy scalars and arrays inside dicts, lists and tuples made Python numbers
    and lists (other dict, list and tuple subclasses than OrderedDict become the plain type)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        kind = collections.OrderedDict if isinstance(obj, collections.OrderedDict) else dict
        return kind((k, _plain_values(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        items = [_plain_values(v) for v in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    return obj


def plain_checkpoint(checkpoint: Any) -> Any:
    """The checkpoint as saved: message hub and meta in plain Python data.

    Each ``HistoryBuffer`` of ``message_hub.log_scalars`` becomes
    ``dict(log_history=[...], count_history=[...], max_length=n)`` (``HistoryBuffer``'s own
    arguments, so nothing is lost: float64 values survive a list exactly); numpy numbers in
    ``message_hub.runtime_info`` and ``meta`` become Python numbers. Other keys are untouched
    and ``checkpoint`` itself is not changed.

    Args:
        checkpoint: What MMEngine's runner passes to ``save_checkpoint`` (anything else is
            returned as it is).
    """
    if not isinstance(checkpoint, dict):
        return checkpoint
    out = dict(checkpoint)
    hub = out.get('message_hub')
    if isinstance(hub, dict):
        hub = dict(hub)
        scalars = hub.get('log_scalars')
        if isinstance(scalars, dict):
            hub['log_scalars'] = collections.OrderedDict(
                (k, dict(log_history=v._log_history.tolist(),
                         count_history=v._count_history.tolist(), max_length=v.max_length)
                 if isinstance(v, HistoryBuffer) else v) for k, v in scalars.items())
        if 'runtime_info' in hub:
            hub['runtime_info'] = _plain_values(hub['runtime_info'])
        out['message_hub'] = hub
    if 'meta' in out:
        out['meta'] = _plain_values(out['meta'])
    return out


_mmengine_hub_load_state_dict = MessageHub.load_state_dict


def _hub_load_state_dict(self, state_dict):
    """MessageHub.load_state_dict that also takes the plain log history of
    :func:`plain_checkpoint` (and, as before, HistoryBuffer objects)."""
    if isinstance(state_dict, dict) and isinstance(state_dict.get('log_scalars'), dict):
        scalars = collections.OrderedDict(
            (k, HistoryBuffer(**v) if isinstance(v, dict) and set(v) == _PLAIN_HISTORY_KEYS
             else v) for k, v in state_dict['log_scalars'].items())
        state_dict = dict(state_dict, log_scalars=scalars)
    return _mmengine_hub_load_state_dict(self, state_dict)


def _pickle_globals(data: bytes) -> List[str]:
    """``module.name`` of each global the pickle streams in ``data`` import, found with
    :mod:`pickletools` (nothing is executed). Best effort, for messages only."""
    found: List[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data) and len(found) < 100:
        strings: List[str] = []  # strings pushed so far: STACK_GLOBAL takes the last two
        memo: dict = {}
        top = None  # the string on top of the stack, if any
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == 'MEMOIZE':
                    memo[len(memo)] = top
                    continue
                if op.name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
                    memo[arg] = top
                    continue
                if op.name in ('GLOBAL', 'INST'):
                    found.append(arg.replace(' ', '.'))
                elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
                if op.name in ('GET', 'BINGET', 'LONG_BINGET'):
                    top = memo.get(arg)
                else:
                    top = arg if isinstance(arg, str) and 'UNICODE' in op.name else None
                if top is not None:
                    strings.append(top)
        except Exception:  # noqa: BLE001  (raw tensor bytes follow the pickles of old files)
            break
    return found


def _refused_globals(filename: str) -> List[str]:
    """The globals in ``filename`` that the weights-only unpickler refuses (may be empty)."""
    try:  # torch's zip format: torch lists them itself, honouring the allow-list
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # noqa: BLE001  (legacy or foreign format: scan it ourselves)
        pass
    allowed = {f'{g.__module__}.{g.__qualname__}'
               for g in torch.serialization.get_safe_globals() if hasattr(g, '__qualname__')}
    try:  # torch's built-in allow-list (private; without it the list is only longer)
        from torch._weights_only_unpickler import _get_allowed_globals
        allowed.update(_get_allowed_globals())
    except ImportError:
        pass
    with open(filename, 'rb') as f:
        data = f.read(64 << 20)
    return [g for g in dict.fromkeys(_pickle_globals(data)) if g not in allowed]


def _refusal(filename: str, error: Exception) -> str:
    """Our message for a checkpoint the weights-only unpickler refused: what and why first;
    never torch's advice to allow-list the global (the file's author chose it)."""
    try:
        refused = _refused_globals(filename)
    except Exception:  # noqa: BLE001
        refused = []
    if refused:
        shown = ', '.join(refused[:5]) + (f' and {len(refused) - 5} more' if len(refused) > 5
                                          else '')
        what = (f'it asks the unpickler for {shown}, which {"is" if len(refused) == 1 else "are"}'
                ' not on the allow-list of data-only classes (tensors, containers, numbers, '
                'strings and the classes MMEngine checkpoints hold), so loading it could run '
                f'code of its choosing. Nothing from the file was run. Do not allow-list {shown} '
                'to get past this')
    else:
        # torch's own reason, without its sentences that recommend allow-listing.
        text = str(error)
        m = re.search(r'WeightsUnpickler error:\s*(.*?)(?:\n\s*\n|Check the documentation|$)',
                      text, re.S)
        reason = ' '.join((m.group(1) if m else text).split())
        reason = ' '.join(s for s in re.split(r'(?<=\.)\s+', reason)
                          if not re.search(r'safe_globals|allowlist|weights_only', s))
        what = ('the weights-only unpickler cannot read it safely '
                f'({reason or "no detail"}): it is not a plain checkpoint of tensors and data')
    return (f'Refusing to load checkpoint {filename!r}: {what}. Load only files whose origin '
            'you trust; a trusted file of your own can be re-saved as a plain state dict of '
            'tensors.')


#: The weight files of a Hugging Face model directory (``save_pretrained``), in the order we
#: look for them: safetensors (transformers' default), sharded safetensors, then the older
#: pickled ``pytorch_model.bin`` (read weights-only like any other pickle).
HF_WEIGHT_FILES = ('model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin',
                   'pytorch_model.bin.index.json')


def is_safetensors(filename: str) -> bool:
    """Whether ``filename`` is a safetensors file: by its ``.safetensors`` suffix or, for a file
    named otherwise (a download cached under another name), by its header: an 8-byte
    little-endian length, then that many bytes of JSON starting with ``{``. Torch's zip
    archives (``PK``) and raw pickles (``\\x80``) never pass: their first 8 bytes read as a
    length far beyond the file."""
    if filename.endswith('.safetensors'):
        return True
    try:
        with open(filename, 'rb') as f:
            head = f.read(9)
        size = osp.getsize(filename)
    except OSError:
        return False
    length = int.from_bytes(head[:8], 'little')
    return len(head) == 9 and head[8:] == b'{' and 2 <= length <= size - 8


def _device_of(map_location):
    """The device to put safetensors tensors on: ``map_location`` when it names one, else the
    CPU (a dict or callable ``map_location`` of :func:`torch.load` has no meaning here)."""
    if isinstance(map_location, (str, torch.device)):
        return torch.device(map_location)
    return torch.device('cpu')


def _load_safetensors(filename: str, map_location=None):
    """The flat state dict of a safetensors file (its format holds tensors only: nothing to
    screen, nothing can run)."""
    try:
        state = safetensors.torch.load_file(filename, device='cpu')
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as e:
        msg = str(e).strip()
        raise CorruptCheckpointError(
            f'checkpoint file {filename!r} is truncated or is not a safetensors file '
            f'({type(e).__name__}: {msg.splitlines()[0] if msg else "no detail"})') from e
    device = _device_of(map_location)
    if device.type != 'cpu':  # outside the try: a missing device is not a corrupt file
        state = {k: v.to(device) for k, v in state.items()}
    return state


def _load_torch_file(filename: str, map_location=None):
    """``torch.load(weights_only=True)`` with our errors (see :func:`load_checkpoint_file`)."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # "from None": torch's text, which recommends allow-listing the refused global, is
        # not printed ahead of ours as the direct cause (it stays in __context__).
        raise UnsafeCheckpointError(_refusal(filename, e)) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        # The file exists, so a failure to read its archive or pickle stream means a
        # truncated or foreign file; the original message is kept for the rare other cause.
        msg = str(e).strip()
        raise CorruptCheckpointError(
            f'checkpoint file {filename!r} is truncated or is not a torch checkpoint '
            f'({type(e).__name__}: {msg.splitlines()[0] if msg else "no detail"})') from e


def _load_weights_file(filename: str, map_location=None):
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    if is_safetensors(filename):
        return _load_safetensors(filename, map_location)
    return _load_torch_file(filename, map_location)


def _load_sharded(index_file: str, map_location=None):
    """The merged state dict of the shards a transformers index file
    (``*.index.json``: ``{"weight_map": {key: shard file name}}``) lists."""
    folder = osp.dirname(index_file)
    try:
        with open(index_file, encoding='utf-8') as f:
            weight_map = json.load(f)['weight_map']
        shards = list(dict.fromkeys(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptCheckpointError(
            f'shard index {index_file!r} is not a transformers index with a "weight_map" '
            f'({type(e).__name__}: {e})') from e
    state = {}
    for shard in shards:
        # Plain names only: an index must not send us to files outside its folder.
        if not isinstance(shard, str) or osp.basename(shard) != shard or shard in ('', '.',
                                                                                   '..'):
            raise CorruptCheckpointError(
                f'shard index {index_file!r} names {shard!r}, which is not a file name in '
                f'{folder!r}')
        part = _load_weights_file(osp.join(folder, shard), map_location)
        if not isinstance(part, dict):
            raise CorruptCheckpointError(f'shard {osp.join(folder, shard)!r} of '
                                         f'{index_file!r} is not a state dict')
        state.update(part)
    missing = [k for k in weight_map if k not in state]
    if missing:
        raise CorruptCheckpointError(
            f'shard index {index_file!r} lists {len(missing)} tensors its shards do not hold '
            f'(e.g. {", ".join(repr(k) for k in missing[:3])})')
    return state


def _load_model_dir(folder: str, map_location=None):
    """The state dict of a Hugging Face model directory (see :data:`HF_WEIGHT_FILES`)."""
    for name in HF_WEIGHT_FILES:
        path = osp.join(folder, name)
        if osp.isfile(path):
            if name.endswith('.index.json'):
                return _load_sharded(path, map_location)
            return _load_weights_file(path, map_location)
    raise FileNotFoundError(f'checkpoint directory {folder!r} holds no model weights: looked '
                            f'for {", ".join(HF_WEIGHT_FILES)}')


def load_checkpoint_file(filename, map_location=None):
    """Load a local checkpoint safely: a torch file with ``weights_only=True`` and the toolkit's
    allow-list, a safetensors file, or a Hugging Face model directory.

    Args:
        filename (str): path of a torch checkpoint (``.pth``, ``.pt``, ``.bin``...), of a
            safetensors file (``.safetensors``, or any name with a safetensors header; see
            :func:`is_safetensors`), or of a directory written by transformers'
            ``save_pretrained`` (:data:`HF_WEIGHT_FILES`: ``model.safetensors``, a sharded
            ``model.safetensors.index.json``, ``pytorch_model.bin`` or its index;
            ``config.json`` is not needed).
        map_location: as for :func:`torch.load`; for safetensors, a device (name) or None
            (CPU).

    Returns:
        The unpickled object (usually a dict); the flat state dict of a safetensors file or a
        model directory.

    Raises:
        FileNotFoundError: the file does not exist, a directory holds none of the weight files
            (the message lists them), or a shard of an index is missing.
        UnsafeCheckpointError: the pickle references a global outside the allow-list (the
            message names them; torch's error is kept as ``__context__``, not printed).
        CorruptCheckpointError: the file is truncated or not a torch / safetensors checkpoint,
            or a shard index is invalid.
    """
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename):
        return _load_model_dir(filename, map_location)
    return _load_weights_file(filename, map_location)


def _load_from_local(filename, map_location):
    return load_checkpoint_file(filename, map_location)


#: The temporary files of :func:`save_checkpoint_atomic`: ``.<name>.pth.<8 random>.tmp``
#: (``tempfile.mkstemp``'s random part) beside ``<name>.pth``.
TEMP_NAME = re.compile(r'^\.[^/]+\.pth\.[a-z0-9_]{8}\.tmp$')


def save_checkpoint_atomic(checkpoint, filename, file_client_args=None, backend_args=None):
    """Drop-in for MMEngine's ``save_checkpoint``: local files are written atomically.

    The data (:func:`plain_checkpoint` of ``checkpoint``) goes to a temporary file in the same
    folder (:data:`TEMP_NAME`), is flushed to disk, and replaces ``filename`` in one
    ``os.replace``. A failure (full disk, kill) leaves any previous file of that name intact
    and raises; remote paths fall back to MMEngine's writer.
    """
    checkpoint = plain_checkpoint(checkpoint)
    if is_remote(filename):
        return _mmengine_save_checkpoint(checkpoint, filename, file_client_args, backend_args)
    filename = str(filename)
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(filename) + '.', suffix='.tmp',
                               dir=folder)
    recorder = None
    try:
        with os.fdopen(fd, 'wb') as f:
            # Locked until the file has its final name, so remove_stale_temporaries leaves a
            # save in progress alone; the kernel drops the lock of a killed writer.
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            recorder = _WriteErrorRecorder(f)
            torch.save(checkpoint, recorder)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, filename)
    except BaseException as e:
        if osp.exists(tmp):
            os.remove(tmp)
        # torch's zip writer turns a failed write (full disk, file size limit) into a
        # RuntimeError such as "unexpected pos 704 vs 598"; report the OS error underneath.
        cause = e if isinstance(e, OSError) else getattr(recorder, 'error', None)
        if cause is not None:
            raise OSError(cause.errno, f'could not save checkpoint {filename!r}: '
                          f'{cause.strerror or cause}; the previous checkpoint files are '
                          'untouched') from e
        raise


def remove_stale_temporaries(folder: str) -> List[Tuple[str, int]]:
    """Remove the temporary files that interrupted :func:`save_checkpoint_atomic` calls left.

    Only regular files in ``folder`` (not below it) named like the writer's temporaries
    (:data:`TEMP_NAME`) are considered, and of those only the ones no process is writing: a
    writer holds an exclusive ``flock`` on its file until it has been renamed, so a lock we
    can take means its writer is gone.

    Args:
        folder: A work dir or checkpoint folder (missing: nothing to do).

    Returns:
        ``(path, size in bytes)`` of every removed file.
    """
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in filter(TEMP_NAME.match, names):
        path = osp.join(folder, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:  # gone meanwhile (renamed by its writer), a link, a folder, not ours
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            st = os.fstat(fd)
            # Still this file under that name (its writer may have renamed it meanwhile).
            if stat.S_ISREG(st.st_mode) and osp.samestat(st, os.stat(path)):
                os.remove(path)
                removed.append((path, st.st_size))
        except OSError:  # locked: a save in progress; or renamed between open and lock
            continue
        finally:
            os.close(fd)
    return removed


class _WriteErrorRecorder:
    """File wrapper that remembers the first OSError of a write (torch hides it)."""

    def __init__(self, f):
        self.f = f
        self.error = None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def flush(self):
        return self.f.flush()


_mmengine_save_checkpoint = mme_checkpoint.save_checkpoint


def install():
    """Apply the safe-loading allow-list, the loader, the atomic writer and the message hub's
    reading of plain log history (idempotent)."""
    HistoryBuffer.__reduce__ = _history_buffer_reduce
    MessageHub.load_state_dict = _hub_load_state_dict
    torch.serialization.add_safe_globals(list(ALLOWED_GLOBALS))
    mme_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    # Runner imported the function by name, so patch both references.
    import mmengine.runner.runner as mme_runner
    mme_checkpoint.save_checkpoint = save_checkpoint_atomic
    mme_runner.save_checkpoint = save_checkpoint_atomic
