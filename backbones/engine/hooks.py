"""Hooks that stop a run clearly instead of letting it go wrong quietly.

* :class:`NonFiniteLossHook`: a NaN or infinite loss stops training at that iteration, before
  the optimizer applies it, naming the last finite loss and the checkpoint that is kept
  (opt-in: ``on_nonfinite='skip'`` drops such steps, up to ``max_skips``).
* :class:`SkippedImagesReportHook`: reports, at the end of the run, every image the
  ``CheckedLoadImageFromFile`` transform skipped (``on_error='skip'``), across data-loader
  workers and ranks.
* :class:`CheckpointMatchHook`: a ``load_from`` / ``--resume`` checkpoint made for another
  model is refused (MMEngine would load it non-strictly, with a warning).
* :class:`StaleTemporariesHook`: when training starts or resumes, removes the temporary files
  that checkpoint saves interrupted by a kill left behind, and logs what it removed.
* :class:`ImageCheckHook` (opt-in, ``--check-images`` or ``check_images = True``): decodes
  every image of the run's data sets before the first iteration, in parallel, and stops
  listing every unreadable file at once.

``tools/train.py`` and ``tools/test.py`` add them to every config (:func:`add_reliability_hooks`).
"""
import logging
import os
import os.path as osp
import time
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.dist import all_gather_object, get_dist_info, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop

from backbones.utils import is_remote
from ..datasets.checks import (SKIP_LEDGER_ENV, UnreadableImagesError, find_unreadable_images,
                               format_listing, image_files, read_skip_ledger)
from .checkpoint_io import remove_stale_temporaries
from .resume import read_last_checkpoint


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check the loss before every optimizer step; stop (or skip the step) when not finite.

    The check wraps ``runner.optim_wrapper.update_params`` so that it runs before
    ``backward()`` and ``step()``: the weights in memory stay those of the last good
    iteration, and since training stops with an exception no checkpoint of a NaN state is
    written (the previous ones are kept).

    Args:
        on_nonfinite: ``'stop'`` (default) raises :class:`NonFiniteLossError`; ``'skip'``
            logs the iteration and drops its update (all ranks drop it together).
        max_skips: With ``'skip'``, stop anyway after this many skipped steps in one run.
    """

    priority = 'VERY_HIGH'

    def __init__(self, on_nonfinite: str = 'stop', max_skips: int = 100) -> None:
        if on_nonfinite not in ('stop', 'skip'):
            raise ValueError(f"NonFiniteLossHook: on_nonfinite must be 'stop' or 'skip', got "
                             f'{on_nonfinite!r}')
        self.on_nonfinite = on_nonfinite
        self.max_skips = max_skips
        self.skipped = 0
        self.last_finite = None  # (loss, 1-based iteration)

    def before_train(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if not hasattr(wrapper, 'update_params') or getattr(wrapper, '_loss_guard', None):
            return
        update_params = wrapper.update_params

        def guarded_update_params(loss, *args, **kwargs):
            if self._loss_is_usable(runner, loss):
                return update_params(loss, *args, **kwargs)
            wrapper.zero_grad()
            return None

        try:
            wrapper.update_params = guarded_update_params
        except (AttributeError, NotImplementedError):  # e.g. OptimWrapperDict
            return
        wrapper._loss_guard = self

    def _loss_is_usable(self, runner, loss) -> bool:
        if not torch.is_tensor(loss):
            return True
        finite = bool(torch.isfinite(loss.detach()).all())
        if self.on_nonfinite == 'skip' and dist.is_available() and dist.is_initialized():
            # Every rank must drop the same steps, or DDP's gradient all-reduce deadlocks.
            flag = torch.tensor([int(finite)], device=loss.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = bool(flag.item())
        iteration = runner.iter + 1
        if finite:
            self.last_finite = (float(loss.detach().float().mean()), iteration)
            return True
        value = loss.detach().float().mean().item()
        if self.last_finite is None:
            last = 'no finite loss was seen in this run (check the data, the lr and the init)'
        else:
            last = f'last finite loss {self.last_finite[0]:.6g} at iteration ' \
                   f'{self.last_finite[1]}'
        ckpt = read_last_checkpoint(runner.work_dir)
        kept = (f'the last checkpoint {ckpt} is kept' if ckpt
                else 'no checkpoint had been saved yet')
        where = f'iteration {iteration} (epoch {runner.epoch + 1})'
        if self.on_nonfinite == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            print_log(f'Non-finite loss ({value}) at {where}: skipping this step '
                      f'({self.skipped}/{self.max_skips} skips allowed); {last}.',
                      logger='current', level=logging.WARNING)
            return False
        if self.on_nonfinite == 'skip':
            raise NonFiniteLossError(
                f'the loss was NaN or infinite in more than {self.max_skips} steps; the last one '
                f'at {where} ({value}); {last}. Training stopped; {kept}.')
        raise NonFiniteLossError(
            f'loss is {value} at {where}; {last}. Training stopped before this step was applied; '
            f'{kept}. Lower the learning rate, check the data, or let the run drop such steps '
            "with custom_hooks=[dict(type='NonFiniteLossHook', on_nonfinite='skip')].")


@HOOKS.register_module()
class SkippedImagesReportHook(Hook):
    """Collect the images that ``CheckedLoadImageFromFile(on_error='skip')`` skipped.

    Before the run it points the transform (in every data-loader worker and rank, through an
    environment variable) at a ledger file in the run's log dir; after each training epoch
    with new skips and at the end of the run it logs how many images were skipped and which.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.ledger = None
        self.reported = 0

    def before_run(self, runner) -> None:
        self.ledger = osp.join(runner.log_dir, 'skipped_images.txt')
        os.environ[SKIP_LEDGER_ENV] = self.ledger

    def _report(self, final: bool) -> None:
        events = read_skip_ledger(self.ledger)
        if not events or (not final and len(events) == self.reported):
            if final:
                print_log('Skipped images: 0', logger='current')
            return
        self.reported = len(events)
        files = {}  # path -> reason, in first-seen order
        for line in events:
            path, _, reason = line.partition('\t')
            files.setdefault(path, reason)
        shown = format_listing([f'{p}: {r}' for p, r in files.items()], limit=50)
        print_log(f'Skipped images: {len(files)} unreadable file(s), skipped {len(events)} '
                  f'time(s) and replaced by other samples (every skip is listed in '
                  f'{self.ledger}):\n{shown}', logger='current', level=logging.WARNING)

    def after_train_epoch(self, runner) -> None:
        self._report(final=False)

    def after_run(self, runner) -> None:
        self._report(final=True)


def _strip_module(name: str) -> str:
    while name.startswith('module.'):
        name = name[len('module.'):]
    return name


def _apply_load_pre_hooks(model, state: dict) -> bool:
    """Let the model's own load-state-dict pre-hooks rename ``state`` (a private copy) as
    ``load_state_dict`` will, e.g. a classifier converting a foreign format. Returns False
    when a hook fails: the real load then reports the problem itself."""
    try:
        for name, module in model.named_modules():
            for hook in module._load_state_dict_pre_hooks.values():
                hook(state, f'{name}.' if name else '', {}, False, [], [], [])
    except Exception:  # noqa: BLE001  (any failure is the real load's to report)
        return False
    return True


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Refuse a ``load_from`` / ``--resume`` checkpoint that was made for another model.

    MMEngine loads such files with ``strict=False``: mismatched names and shapes only produce
    a warning, and training then starts from (mostly) random weights. This hook compares the
    checkpoint's tensors with the model's before they are loaded.

    * ``--resume``: every parameter and buffer must be present with the same shape.
    * ``load_from``: at least ``min_match`` of the model's tensors must match by name and
      shape (fine-tuning a detector with another number of classes changes only a few heads).

    Args:
        min_match: The fraction of the model's tensors a ``load_from`` checkpoint must fit.
    """

    priority = 'VERY_HIGH'

    def __init__(self, min_match: float = 0.5) -> None:
        self.min_match = min_match

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
        # Wrappers (DDP, test-time augmentation) prefix names with "module.": compare without.
        state = {_strip_module(k): v for k, v in state.items()}
        model = runner.model
        while hasattr(model, 'module'):
            model = model.module
        own = {_strip_module(k): v for k, v in model.state_dict().items()}
        if not own or not _apply_load_pre_hooks(model, state):
            return
        state = {k: v for k, v in state.items() if torch.is_tensor(v)}
        missing = [k for k in own if k not in state]
        wrong = [f'{k}: {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model'
                 for k, v in own.items() if k in state and state[k].shape != v.shape]
        matched = len(own) - len(missing) - len(wrong)
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        resuming = bool(getattr(runner, '_resume', False))
        if (resuming and (missing or wrong)) or matched < self.min_match * len(own):
            detail = '; '.join(wrong[:5] + [f'missing {k}' for k in missing[:5]])
            raise ValueError(
                f'checkpoint {source!r} was made for another model: {matched} of the '
                f"{len(own)} tensors of {type(model).__name__} match it by name and shape "
                f'({len(missing)} missing, {len(wrong)} of another shape: {detail}). '
                + ('Resume with the config that wrote it.' if resuming else
                   'Check load_from and the config (arch, num_classes).'))


@HOOKS.register_module()
class StaleTemporariesHook(Hook):
    """Remove what checkpoint saves killed midway left, when training starts or resumes.

    A kill during a save leaves the writer's hidden temporary file (``.iter_20.pth.<random>
    .tmp``, as large as a checkpoint) beside the checkpoints; nothing else would remove it.
    On the main process, before the first iteration, this removes every such file in the
    work dir and the checkpoint hook's ``out_dir`` that no process is writing
    (:func:`~backbones.engine.checkpoint_io.remove_stale_temporaries`), and logs them.
    """

    priority = 'LOWEST'  # after CheckpointHook.before_train has resolved its out_dir

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        folders = {runner.work_dir}
        for hook in runner.hooks:
            out_dir = getattr(hook, 'out_dir', None)
            if isinstance(hook, CheckpointHook) and isinstance(out_dir, str) \
                    and not is_remote(out_dir):
                folders.add(out_dir)
        for folder in sorted(folders):
            removed = remove_stale_temporaries(folder)
            if removed:
                size = sum(n for _, n in removed) / 2**20
                print_log(f'Removed {len(removed)} stale temporary checkpoint file(s) '
                          f'({size:.1f} MiB) left in {folder} by interrupted saves: '
                          f'{", ".join(osp.basename(p) for p, _ in removed)}',
                          logger='current', level=logging.WARNING)


@HOOKS.register_module()
class ImageCheckHook(Hook):
    """Decode every image the run will read before it starts, and list all unreadable ones.

    Without it an unreadable image stops a run only when it is first sampled (or, with
    ``on_error='skip'``, is skipped then). This hook reads and decodes every image and label map
    of the data sets the run has built (train and val when training, test when testing) with
    the decoders of their pipelines, in parallel processes with a progress bar, and raises
    :class:`~backbones.datasets.checks.UnreadableImagesError` listing every file that fails
    (all of them are written to ``<log dir>/unreadable_images.txt``). With several ranks each
    checks its share. ``tools/train.py --check-images`` (or ``check_images = True`` in the
    config) adds it; the default start-up does not decode anything.

    Args:
        workers: Decoding processes per rank (default: the CPUs the process may use, shared
            among the ranks of this machine).
    """

    priority = 'VERY_HIGH'

    def __init__(self, workers: Optional[int] = None) -> None:
        self.workers = workers

    def before_run(self, runner) -> None:
        files, unlisted = {}, []
        # The private attributes: the public properties would build a loop this run skips.
        for loop in (runner._train_loop, runner._val_loop, runner._test_loop):
            if not isinstance(loop, BaseLoop):  # not built: not used by this run
                continue
            dataset = loop.dataloader.dataset
            found = image_files(dataset)
            if found is None:
                unlisted.append(type(dataset).__name__)
            files.update(dict.fromkeys(found or []))
        if unlisted:
            print_log(f'Image check: cannot list the files of {", ".join(unlisted)}; not '
                      'checked', logger='current', level=logging.WARNING)
        rank, world = get_dist_info()
        mine = list(files)[rank::world]
        print_log(f'Image check: decoding {len(files)} files'
                  + (f' ({len(mine)} on each of {world} ranks)' if world > 1 else ''),
                  logger='current')
        start = time.perf_counter()
        workers = self.workers or max(1, len(os.sched_getaffinity(0))
                                      // int(os.environ.get('LOCAL_WORLD_SIZE', 1)))
        bad = find_unreadable_images(mine, workers, progress=rank == 0)
        if world > 1:
            bad = sorted(b for part in all_gather_object(bad) for b in part)
        seconds = time.perf_counter() - start
        if not bad:
            print_log(f'Image check: all {len(files)} files decode ({seconds:.1f} s)',
                      logger='current')
            return
        listing = osp.join(runner.log_dir, 'unreadable_images.txt')
        if rank == 0:
            with open(listing, 'w') as f:
                f.writelines(f'{path}\t{problem}\n' for path, problem in bad)
        raise UnreadableImagesError(
            f'image check: {len(bad)} of {len(files)} files cannot be read ({seconds:.1f} s; '
            f'the full list is in {listing}):\n'
            f'{format_listing([f"{p}: {why}" for p, why in bad], limit=50)}\n'
            'Fix or remove them, or let training skip such files (logged and counted) with '
            "on_error='skip' on CheckedLoadImageFromFile or bad_image='skip' on "
            'ImageFolderDataset.')


def add_reliability_hooks(cfg: Config) -> None:
    """Add :class:`NonFiniteLossHook`, :class:`SkippedImagesReportHook`,
    :class:`CheckpointMatchHook`, :class:`StaleTemporariesHook` and, when the config says
    ``check_images = True``, :class:`ImageCheckHook` to ``cfg.custom_hooks`` unless the config
    already has them (its own settings win).

    Args:
        cfg: The full config (changed in place).
    """
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks if isinstance(h, dict)}
    wanted = ['NonFiniteLossHook', 'SkippedImagesReportHook', 'CheckpointMatchHook',
              'StaleTemporariesHook'] + (['ImageCheckHook'] if cfg.get('check_images') else [])
    for name in wanted:
        if name not in present:
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks


__all__ = ['CheckpointMatchHook', 'ImageCheckHook', 'NonFiniteLossError', 'NonFiniteLossHook',
           'SkippedImagesReportHook', 'StaleTemporariesHook', 'add_reliability_hooks']
