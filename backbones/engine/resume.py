"""Exact resumption: a run killed anywhere continues as if it had never stopped.

MMEngine 0.10.7 resumes the counters, weights, optimizer, schedulers and message hub, but not
where the data stream was nor the random state:

* ``EpochBasedTrainLoop`` restarts a half-done epoch from its first batch (a checkpoint saved
  every N iterations is mid-epoch), so the epoch is trained longer than in the original run;
* ``IterBasedTrainLoop`` skips the consumed batches by *loading* them (every image decoded and
  augmented again: hours at 160k iterations), and the random state after the skip is not the
  one the original run had;
* creating a data loader iterator and running validation both draw from the global RNGs, so a
  resumed run sees different augmentations and drop-path masks from then on.

The two loops here fix that. The sampler is advanced by *index batches* only (no data is
read), and every global RNG (``random``, numpy, torch) is reseeded from ``(seed, iteration)``
right before each training batch is fetched, so the random stream of iteration ``i`` is the
same whether the run got there in one go or after a restart. With ``num_workers > 0`` the
sample order is still exact; the augmentation randomness inside the workers follows
MMEngine's per-worker seeding and restarts with them. ``tools/train.py`` switches a config to
these loops (:func:`use_resumable_loops`).

:func:`find_resume_checkpoint` picks what ``--resume`` continues from: the checkpoint named in
``last_checkpoint``, or, when that file is truncated or unreadable, the newest intact one,
reporting every file it passes over.
"""
import glob
import logging
import os.path as osp
import random
import re
import zipfile
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.runner.loops import (EpochBasedTrainLoop, IterBasedTrainLoop,
                                   _InfiniteDataloaderIterator)

from backbones.checkpoint.io import CorruptCheckpointError, load_checkpoint_file
from backbones.registry import register_loop


def seed_iteration(seed: Optional[int], iteration: int) -> None:
    """Reseed ``random``, numpy and torch (CPU and CUDA) from ``(seed, iteration)``.

    Args:
        seed: The run's seed (``runner.seed``); ``None`` leaves the RNGs alone.
        iteration: The global training iteration about to start.
    """
    if seed is None:
        return
    value = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, iteration]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class _SkipBatches:
    """Batch sampler wrapper: the next iteration over it drops its first ``skip`` batches.

    Only index lists are drawn for the dropped batches, so skipping costs no data loading.
    """

    def __init__(self, batch_sampler):
        self.batch_sampler = batch_sampler
        self.skip = 0

    def __iter__(self):
        it = iter(self.batch_sampler)
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            if next(it, None) is None:
                return
        yield from it

    def __len__(self):
        return len(self.batch_sampler)

    def __getattr__(self, name):
        # ``sampler``, ``batch_size`` and the like, for hooks that look through it.
        if name == 'batch_sampler':
            raise AttributeError(name)
        return getattr(self.batch_sampler, name)


def _install_skipper(dataloader) -> Optional[_SkipBatches]:
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if batch_sampler is None:
        return None
    if isinstance(batch_sampler, _SkipBatches):
        return batch_sampler
    skipper = _SkipBatches(batch_sampler)
    # DataLoader forbids re-assigning batch_sampler after __init__; the wrapper yields the
    # same batches, only the first ones of one pass are dropped.
    object.__setattr__(dataloader, 'batch_sampler', skipper)
    return skipper


def _sampler_of(dataloader):
    sampler = getattr(dataloader, 'sampler', None)
    if sampler is None or not hasattr(sampler, 'set_epoch'):
        sampler = getattr(getattr(dataloader, 'batch_sampler', None), 'sampler', sampler)
    return sampler


@register_loop()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """:class:`~mmengine.runner.EpochBasedTrainLoop` that resumes mid-epoch exactly.

    Same arguments. A checkpoint saved after iteration ``i`` of epoch ``e`` continues with
    batch ``i + 1`` of that epoch's sample order, with the random state iteration ``i + 1``
    would have had.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._skipper = _install_skipper(self.dataloader)

    def run_epoch(self) -> None:
        """Iterate one epoch (the rest of it, after a mid-epoch resume)."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start = min(max(self._iter - self._epoch * len(self.dataloader), 0),
                    len(self.dataloader))
        if start:
            if self._skipper is None:
                raise RuntimeError('resuming mid-epoch needs a data loader with a batch_size')
            print_log(f'Resuming epoch {self._epoch + 1} at batch {start + 1} of '
                      f'{len(self.dataloader)} (the sampler skips {start} batches without '
                      'loading them)', logger='current')
            self._skipper.skip = start
        iterator = iter(self.dataloader)
        idx = start
        while True:
            seed_iteration(self.runner.seed, self._iter)
            try:
                data_batch = next(iterator)
            except StopIteration:
                break
            self.run_iter(idx, data_batch)
            idx += 1
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


@register_loop()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """:class:`~mmengine.runner.IterBasedTrainLoop` that resumes without reloading data.

    Same arguments. MMEngine's loop fetches (decodes, augments) every batch it skips; this one
    advances the sampler by index batches only and reseeds the RNGs per iteration.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._skipper = _install_skipper(self.dataloader)

    def _fast_forward(self) -> None:
        if self._skipper is None:  # no batch sampler: MMEngine's way, loading the data
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            return
        sampler = _sampler_of(self.dataloader)
        if isinstance(sampler, InfiniteSampler):
            epochs, skip = 0, self._iter
        else:
            epochs, skip = divmod(self._iter, len(self.dataloader))
            if epochs and hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(epochs)
        print_log(f'Resuming at iteration {self._iter + 1}: the sampler skips {skip} batches '
                  'without loading them', logger='current')
        self._skipper.skip = skip
        self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
        self.dataloader_iterator._epoch = epochs

    def run(self) -> torch.nn.Module:
        """Launch training (or continue it after a resume)."""
        self.runner.call_hook('before_train')
        # The whole run is one big epoch, as in MMEngine's loop.
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            self._fast_forward()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            seed_iteration(self.runner.seed, self._iter)
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model


_PLAIN_LOOPS = {
    'EpochBasedTrainLoop': 'ResumableEpochBasedTrainLoop',
    'IterBasedTrainLoop': 'ResumableIterBasedTrainLoop',
}


def use_resumable_loops(cfg: Config) -> None:
    """Switch MMEngine's two stock training loops in ``cfg.train_cfg`` to the resumable ones.

    A config naming another loop type is left alone.

    Args:
        cfg: The full config (changed in place).
    """
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return
    loop_type = train_cfg.get('type')
    if loop_type is None:
        by_epoch = train_cfg.pop('by_epoch', True)
        plain = 'EpochBasedTrainLoop' if by_epoch else 'IterBasedTrainLoop'
        train_cfg['type'] = _PLAIN_LOOPS[plain]
    elif isinstance(loop_type, str) and loop_type.split('.')[-1] in _PLAIN_LOOPS:
        train_cfg['type'] = _PLAIN_LOOPS[loop_type.split('.')[-1]]


_CKPT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def check_checkpoint_intact(filename: str) -> None:
    """Raise :class:`CorruptCheckpointError` if ``filename`` is truncated or damaged.

    torch's zip checkpoints are checked by reading every member against its CRC (the weights
    are not unpickled); other files are loaded with the safe loader.

    Args:
        filename: A local checkpoint path.

    Raises:
        FileNotFoundError: the file does not exist.
        CorruptCheckpointError: naming the file and what is wrong.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    with open(filename, 'rb') as f:
        magic = f.read(4)
    if magic != b'PK\x03\x04':  # not torch's zip format: the legacy pickle stream
        load_checkpoint_file(filename, map_location='cpu')
        return
    try:
        with zipfile.ZipFile(filename) as zf:
            bad = zf.testzip()
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CorruptCheckpointError(
            f'checkpoint file {filename!r} is truncated or damaged: its zip archive has no '
            f'valid end record (the file was cut short, {osp.getsize(filename)} bytes; {e})'
        ) from e
    if bad is not None:
        raise CorruptCheckpointError(
            f'checkpoint file {filename!r} is damaged: member {bad!r} fails its CRC check')
    if not any(n.endswith('/data.pkl') or n == 'data.pkl' for n in names):
        raise CorruptCheckpointError(f'checkpoint file {filename!r} is a zip file but not a '
                                     'torch checkpoint (no data.pkl)')


def _candidates(work_dir: str) -> List[str]:
    found: List[Tuple[float, int, str]] = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = _CKPT_NAME.match(osp.basename(path))
        if m:
            found.append((osp.getmtime(path), int(m.group(2)), path))
    return [p for _, _, p in sorted(found, reverse=True)]


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint MMEngine's ``work_dir/last_checkpoint`` names (a relative name joined
    with ``work_dir``); ``None`` when there is no such file or it is empty. Not checked."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        named = f.read().strip()
    if not named:
        return None
    return named if osp.isabs(named) else osp.join(work_dir, named)


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (without a path) should continue from.

    The file named in ``work_dir/last_checkpoint`` comes first, then ``epoch_*.pth`` /
    ``iter_*.pth`` newest first. Each file that is missing, truncated or damaged is reported
    (a warning naming it and the reason) and the next one is tried.

    Args:
        work_dir: The run's work dir.

    Returns:
        The path of the newest intact checkpoint, or None when the work dir has none.

    Raises:
        CorruptCheckpointError: there are checkpoints but none is intact.
    """
    named = read_last_checkpoint(work_dir)
    order: List[str] = [named] if named else []
    for path in _candidates(work_dir):
        if all(not osp.exists(o) or not osp.samefile(path, o) for o in order):
            order.append(path)
    for path in order:
        try:
            check_checkpoint_intact(path)
        except (CorruptCheckpointError, FileNotFoundError) as e:
            print_log(f'Not resuming from {path}: {e}. Trying the previous checkpoint.',
                      logger='current', level=logging.WARNING)
            continue
        return path
    if order:
        raise CorruptCheckpointError(
            f'no intact checkpoint to resume from in {work_dir!r}: every candidate is missing '
            f'or damaged ({", ".join(order)}); see the warnings above')
    return None
