"""Safe checkpoint I/O for MMEngine 0.10.7 on torch >= 2.6.

torch.load defaults to ``weights_only=True`` since torch 2.6, and we keep it on: a checkpoint
from a stranger must never run code. Two things stood between that and MMEngine's ``--resume``:

* MMEngine pickles ``HistoryBuffer`` (the message hub's log history) with its numpy arrays.
  We give ``HistoryBuffer`` a ``__reduce__`` that rebuilds it from plain lists, so a checkpoint
  refers to exactly one toolkit class and no ``builtins.getattr`` (allow-listing ``getattr``
  would let a pickle reach attributes of any allow-listed object).
* Runtime info and dataset meta can hold numpy arrays and scalars; their reconstructors are
  data-only and allow-listed.

Everything else a pickle asks for is refused with :class:`UnsafeCheckpointError`, naming the
file. Saving is atomic (temporary file + ``os.replace``) so a kill mid-save never leaves a
truncated checkpoint under the final name.
"""
import os
import os.path as osp
import pickle
import tempfile
import zipfile

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mme_checkpoint


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


#: Exactly the classes a toolkit checkpoint may reference beyond tensors and builtin containers.
ALLOWED_GLOBALS = tuple([HistoryBuffer] + _numpy_globals())


def load_checkpoint_file(filename, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` and the toolkit's allow-list.

    Args:
        filename (str): path of the file.
        map_location: as for :func:`torch.load`.

    Returns:
        The unpickled object (usually a dict).

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the pickle references a global outside the allow-list.
        CorruptCheckpointError: the file is truncated or not a torch checkpoint.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).strip().splitlines()
        reason = next((line for line in detail if 'Unsupported global' in line
                       or 'unsupported' in line.lower()), detail[0] if detail else '')
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename!r}: it pickles an object outside the '
            f'allow-list of data-only classes, so loading it could execute code. ({reason}) '
            'Only load files you trust; a plain state dict of tensors always loads.') from e
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        # The file exists, so a failure to read its archive or pickle stream means a
        # truncated or foreign file; the original message is kept for the rare other cause.
        msg = str(e).strip()
        raise CorruptCheckpointError(
            f'checkpoint file {filename!r} is truncated or is not a torch checkpoint '
            f'({type(e).__name__}: {msg.splitlines()[0] if msg else "no detail"})') from e


def _load_from_local(filename, map_location):
    return load_checkpoint_file(filename, map_location)


def save_checkpoint_atomic(checkpoint, filename, file_client_args=None, backend_args=None):
    """Drop-in for MMEngine's ``save_checkpoint``: local files are written atomically.

    The data goes to a temporary file in the same folder, is flushed to disk, and replaces
    ``filename`` in one ``os.replace``. A failure (full disk, kill) leaves any previous file
    of that name intact and raises; remote paths fall back to MMEngine's writer.
    """
    if '://' in str(filename):
        return _mmengine_save_checkpoint(checkpoint, filename, file_client_args, backend_args)
    filename = str(filename)
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(filename) + '.', suffix='.tmp',
                               dir=folder)
    recorder = None
    try:
        with os.fdopen(fd, 'wb') as f:
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
    """Apply the safe-loading allow-list, the loader and the atomic writer (idempotent)."""
    HistoryBuffer.__reduce__ = _history_buffer_reduce
    torch.serialization.add_safe_globals(list(ALLOWED_GLOBALS))
    mme_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    # Runner imported the function by name, so patch both references.
    import mmengine.runner.runner as mme_runner
    mme_checkpoint.save_checkpoint = save_checkpoint_atomic
    mme_runner.save_checkpoint = save_checkpoint_atomic
