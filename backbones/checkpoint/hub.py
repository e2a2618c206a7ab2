"""Fetching released checkpoints: download once into a cache, safely, then load from there.

Where a checkpoint path is accepted (``init_cfg.checkpoint``, ``load_from``, ``tools/test.py``)
these name a file to fetch: an ``http(s)://`` URL, ``zoo://NAME`` (an entry of
:mod:`backbones.zoo`) or ``torchvision://NAME``. :func:`resolve_checkpoint` turns each into a
local path:

* the cache is ``$CONVNEXT_CHECKPOINT_DIR`` if set, else the torch hub cache that MMEngine and
  torchvision use (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/...``); a file
  already there is used without any network access;
* a download goes to a temporary file beside the target, with a progress bar; it gets its final
  name only once its size matches the server's Content-Length, its SHA-256 the zoo's (where
  known), and its pickle holds nothing that the weights-only loader refuses. An interrupted or
  refused download leaves nothing that looks valid;
* one process per machine downloads a file: the others (the ranks of ``dist_train.sh``) wait
  on a lock beside it and then find it in the cache;
* ``$CONVNEXT_ZOO_MIRROR`` replaces the zoo's base URL (``https://dl.fbaipublicfiles.com/
  convnext/``) for users behind a firewall;
* failures raise :class:`CheckpointDownloadError` naming the URL, where to put the file by hand
  and the mirror setting.
"""
import contextlib
import fcntl
import hashlib
import http.client
import os
import os.path as osp
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Optional

import torch.hub
from mmengine.runner.checkpoint import CheckpointLoader, get_torchvision_models
from tqdm import tqdm

from backbones.zoo import MIRROR_ENV, SCHEME, load_zoo, mirrored
from .io import UnsafeCheckpointError, _refused_globals, is_safetensors, load_checkpoint_file

#: Environment variable: the checkpoint cache folder (default: the torch hub cache).
CACHE_ENV = 'CONVNEXT_CHECKPOINT_DIR'
#: Schemes :func:`resolve_checkpoint` fetches.
FETCHED = ('http://', 'https://', SCHEME, 'torchvision://')
_CHUNK = 1 << 20


class CheckpointDownloadError(OSError):
    """A checkpoint could not be downloaded; the message says what to do instead."""


def cache_dir() -> str:
    """The checkpoint cache: ``$CONVNEXT_CHECKPOINT_DIR``, else ``<torch hub dir>/checkpoints``."""
    folder = os.environ.get(CACHE_ENV, '').strip()
    if folder:
        return osp.abspath(osp.expanduser(folder))
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def is_fetched(spec) -> bool:
    """Whether ``spec`` names a checkpoint to fetch (URL, ``zoo://``, ``torchvision://``)."""
    return str(spec).startswith(FETCHED)


def _url_of(spec: str):
    """``(url, sha256 or None)`` of a fetched spec, before mirroring."""
    if spec.startswith(SCHEME):
        entry = load_zoo().get(spec)
        return entry.url, entry.sha256
    if spec.startswith('torchvision://'):
        name = spec[len('torchvision://'):]
        urls = get_torchvision_models()
        if name not in urls:
            raise KeyError(f'{spec!r}: torchvision has no model {name!r}')
        return urls[name], None
    entry = load_zoo().find_url(spec)
    return spec, entry.sha256 if entry else None


def _advice(url: str, source: str, target: str) -> str:
    mirror = os.environ.get(MIRROR_ENV, '').strip()
    via = f' (from {source}, the mirror in ${MIRROR_ENV} of {url})' if source != url else ''
    return (f'{via}. Place the file by hand at {target!r} (the cache; ${CACHE_ENV} moves it), '
            f'or set ${MIRROR_ENV} to a mirror of {load_zoo().base_url} (now '
            f'{repr(mirror) if mirror else "unset"}), or give a local file instead (for a '
            'config: --cfg-options model.backbone.init_cfg.checkpoint=PATH)')


def _http_get(source: str, url: str, tmp, target: str, sha256: Optional[str],
              progress: bool, timeout: float) -> None:
    """Stream ``source`` into the open file ``tmp``, checking size and hash."""
    request = urllib.request.Request(source, headers={'User-Agent': 'convnext-dense'})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise CheckpointDownloadError(
            f'could not download checkpoint {source!r}: HTTP {e.code} {e.reason}'
            + _advice(url, source, target)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, 'reason', None) or e
        raise CheckpointDownloadError(
            f'could not download checkpoint {source!r}: the server cannot be reached '
            f'({reason}; offline?)' + _advice(url, source, target)) from None
    length = response.headers.get('Content-Length')
    total = int(length) if length and length.isdigit() else None
    digest = hashlib.sha256()
    received = 0
    bar = tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024,
               desc=osp.basename(target), disable=not progress, file=sys.stderr)
    with response, bar:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (http.client.IncompleteRead, OSError) as e:
                raise CheckpointDownloadError(
                    f'could not download checkpoint {source!r}: the transfer broke off '
                    f'after {received} of {total or "?"} bytes ({type(e).__name__})'
                    + _advice(url, source, target)) from None
            if not chunk:
                break
            tmp.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise CheckpointDownloadError(
            f'could not download checkpoint {source!r}: the transfer broke off after '
            f'{received} of {total} bytes' + _advice(url, source, target))
    if sha256 and digest.hexdigest() != sha256.lower():
        raise CheckpointDownloadError(
            f'checkpoint {source!r} has SHA-256 {digest.hexdigest()}, the zoo expects {sha256}: '
            'a different or damaged file' + _advice(url, source, target))


@contextlib.contextmanager
def _file_lock(target: str):
    """Hold an exclusive lock on ``.<name>.lock`` beside ``target`` (waits for the holder)."""
    lock = osp.join(osp.dirname(target), f'.{osp.basename(target)}.lock')
    with open(lock, 'a') as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def download(url: str, target: Optional[str] = None, sha256: Optional[str] = None,
             progress: Optional[bool] = None, timeout: float = 60.0) -> str:
    """Download ``url`` into the cache unless it is there already.

    Args:
        url: The file's (official) URL; fetched from its mirror when ``$CONVNEXT_ZOO_MIRROR``
            is set (see :func:`backbones.zoo.mirrored`).
        target: Where to put it (default: the cache folder + the URL's file name).
        sha256: The expected SHA-256 (hex), checked when given.
        progress: Show a progress bar (default: when stderr is a terminal).
        timeout: Seconds without data before the transfer counts as failed.

    Returns:
        The local path.

    Raises:
        CheckpointDownloadError: Unreachable server, HTTP error, short transfer or wrong hash
            (nothing is left under ``target``).
        UnsafeCheckpointError: The file's pickle needs globals the weights-only loader refuses
            (nothing is cached).
    """
    target = target or osp.join(cache_dir(), url.rsplit('/', 1)[-1].split('?')[0])
    if osp.isfile(target):
        return target
    folder = osp.dirname(osp.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CheckpointDownloadError(
            f'cannot create the checkpoint cache {folder!r} ({e.strerror}); set ${CACHE_ENV} '
            'to a writable folder') from None
    source = mirrored(url)
    progress = sys.stderr.isatty() if progress is None else progress
    with _file_lock(target):
        if osp.isfile(target):  # another process finished it while we waited
            return target
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(target)}.', suffix='.part',
                                   dir=folder)
        try:
            with os.fdopen(fd, 'wb') as f:
                print(f'Downloading {source} to {target}', file=sys.stderr, flush=True)
                _http_get(source, url, f, target, sha256, progress, timeout)
                f.flush()
                os.fsync(f.fileno())
            refused = [] if is_safetensors(tmp) else _refused_globals(tmp)
            if refused:
                raise UnsafeCheckpointError(
                    f'Refusing checkpoint {source!r}: its pickle asks for '
                    f'{", ".join(refused[:5])}, which the weights-only loader does not allow '
                    '(loading it could run code of its choosing). Nothing was cached.')
            os.replace(tmp, target)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
    return target


def resolve_checkpoint(spec, progress: Optional[bool] = None) -> str:
    """The local path of a checkpoint spec, fetching it first if it is remote.

    Args:
        spec: A local path (used as it is: a file given by the user always wins), an
            ``http(s)://`` URL, ``zoo://NAME`` or ``torchvision://NAME``.
        progress: See :func:`download`.

    Returns:
        A path to an existing local file (or a folder, for a Hugging Face model directory).

    Raises:
        FileNotFoundError: A local path that does not exist (the message suggests the zoo
            entry of that file name, if there is one).
        KeyError: An unknown ``zoo://`` name.
        CheckpointDownloadError, UnsafeCheckpointError: See :func:`download`.
    """
    spec = str(spec)
    if is_fetched(spec):
        url, sha256 = _url_of(spec)
        return download(url, sha256=sha256, progress=progress)
    path = osp.expanduser(spec)
    if osp.exists(path):
        return path
    raise FileNotFoundError(f'checkpoint {spec!r} does not exist' + missing_hint(spec))


def missing_hint(path: str) -> str:
    """For a missing local file that the zoo releases: how to fetch it (else '')."""
    try:
        entry = load_zoo().get(osp.basename(str(path)))
    except KeyError:
        return ''
    return (f'; it is the released {entry.name!r}: name it as {SCHEME}{entry.name} or '
            f'{entry.url} to fetch it into the cache, or run `python tools/download.py '
            f'{entry.name}`')


def load_fetched(filename, map_location=None):
    """MMEngine checkpoint loader for :data:`FETCHED` schemes: fetch, then load weights-only."""
    return load_checkpoint_file(resolve_checkpoint(filename), map_location=map_location)


def install() -> None:
    """Route MMEngine's loading of URLs, ``zoo://`` and ``torchvision://`` through
    :func:`load_fetched` (idempotent)."""
    CheckpointLoader.register_scheme(prefixes=FETCHED, loader=load_fetched, force=True)


__all__ = ['CACHE_ENV', 'CheckpointDownloadError', 'UnsafeCheckpointError', 'cache_dir',
           'download', 'install', 'is_fetched', 'load_fetched', 'missing_hint',
           'resolve_checkpoint']
