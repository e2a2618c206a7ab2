"""What ``tools/train.py`` and ``tools/test.py`` share: their common arguments, and what they do
to a config before MMEngine's Runner sees it (command-line options checked and merged,
pretrained weights fetched up front, the launcher's distributed set-up, the rewrites of a test
run: TTA, drawing, dumping predictions). Kept here, not in the tools, so tests reach every rule.
"""
import argparse
import datetime
import difflib
import inspect
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from backbones.checkpoint.hub import is_fetched, missing_hint, resolve_checkpoint
from backbones.datasets.checks import check_num_classes
from backbones.utils import is_remote
from backbones.zoo import load_zoo
from .hooks import add_reliability_hooks


def _walk(node: Any, path: str = ''):
    """Yield ``(path, dict)`` for every dict inside a config tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{path}.{i}')


def _producer_hint(checkpoint: str) -> str:
    try:
        entry = load_zoo().get(osp.basename(checkpoint))
    except KeyError:
        entry = None
    made_by = ('configs/classification/<a config>.py' if entry is None or not entry.config_path
               else entry.config_path)
    return (missing_hint(checkpoint).lstrip('; ') or 'it is no released file') + (
        f'; or produce one with `python tools/train.py {made_by}` and pass its checkpoint')


def pretrained_checkpoints(cfg: Config):
    """``(config key, checkpoint)`` of every ``init_cfg=dict(type='Pretrained', ...)`` in
    ``cfg.model`` and of ``cfg.load_from``."""
    found = []
    for path, node in _walk(cfg.get('model', {}), 'model'):
        init = node.get('init_cfg')
        inits = init if isinstance(init, (list, tuple)) else [init]
        for i, item in enumerate(inits):
            if isinstance(item, dict) and item.get('type') == 'Pretrained':
                where = f'{path}.init_cfg' + (f'.{i}' if isinstance(init, (list, tuple)) else '')
                found.append((f'{where}.checkpoint', item.get('checkpoint')))
    if cfg.get('load_from'):
        found.append(('load_from', cfg.load_from))
    return found


def fetch_pretrained(cfg: Config) -> None:
    """Before any data is loaded: download the config's remote pretrained checkpoints into the
    cache (URLs, ``zoo://``, ``torchvision://``: see :mod:`backbones.checkpoint.hub`) and fail on a
    missing local one.

    Every process calls this; one per machine downloads, the others wait for its file. The
    config keeps naming the remote file: the loaders find it in the cache.

    Args:
        cfg: the full config (see :func:`pretrained_checkpoints` for what is fetched).

    Raises:
        FileNotFoundError: a local checkpoint is missing: the message names the config key,
            the path, the zoo entry of that file name (if any) and the command that produces
            such a checkpoint.
        backbones.checkpoint.CheckpointDownloadError: a download failed (the message names the
            URL, the cache path and the mirror setting).
    """
    for key, ckpt in pretrained_checkpoints(cfg):
        if not ckpt:
            continue
        if is_fetched(ckpt):
            resolve_checkpoint(ckpt)
        elif not is_remote(ckpt) and not osp.exists(osp.expanduser(str(ckpt))):
            raise FileNotFoundError(
                f'pretrained checkpoint not found: {ckpt!r} (config key {key}); '
                f'{_producer_hint(str(ckpt))}; or point the config elsewhere with '
                f'`--cfg-options {key}=PATH`.')


def validate_cfg_options(cfg: Config, options: Optional[Dict[str, Any]]) -> None:
    """Reject ``--cfg-options`` keys that do not exist in the config (typos).

    Args:
        cfg: the loaded config, before the options are merged.
        options: the parsed ``--cfg-options`` dict (dotted keys).

    Raises:
        KeyError: naming the option, the first missing part and the closest existing keys.
    """
    # Top-level arguments of MMEngine's Runner are valid even when a config leaves them out.
    runner_args = set(inspect.signature(Runner.__init__).parameters) - {'self'}
    for dotted in options or {}:
        if dotted in runner_args:
            continue
        node: Any = cfg._cfg_dict if isinstance(cfg, Config) else cfg
        walked = []
        for part in dotted.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                keys = list(node.keys()) if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, keys, n=3)
                where = '.'.join(walked) or '<top level>'
                hint = f' Did you mean: {", ".join(close)}?' if close else (
                    f' Keys there: {", ".join(sorted(map(str, keys))[:20])}' if keys else '')
                raise KeyError(
                    f'--cfg-options {dotted}: {where} has no key {part!r}.{hint} '
                    'Use --allow-new-keys to add a key that the config does not define.')
            walked.append(part)


def _replace_types(node: Any, old: str, new: str) -> int:
    count = 0
    for _, d in _walk(node):
        if d.get('type') == old:
            d['type'] = new
            count += 1
    return count


def revert_sync_bn_if_single(cfg: Config, distributed: bool) -> None:
    """Use BN where the config asks for SyncBN but there is nothing to sync.

    torch's SyncBatchNorm needs an initialised process group and CUDA tensors; on one process
    (or on CPU with gloo) it fails with "Default process group is not initialized". The two
    compute the same statistics on one process, so the swap changes no number there.

    Args:
        cfg: the config (changed in place).
        distributed: whether the run has several processes.
    """
    if distributed and torch.cuda.is_available():
        return
    n = _replace_types(cfg.get('model', {}), 'SyncBN', 'BN')
    if n:
        why = 'one process' if not distributed else 'CPU (gloo has no SyncBN)'
        print_log(f'SyncBN -> BN in {n} module config(s): running on {why}.', logger='current')


def _use_fp32_on_cpu(cfg: Config) -> None:
    wrapper = cfg.get('optim_wrapper')
    if isinstance(wrapper, dict) and wrapper.get('type') == 'AmpOptimWrapper' \
            and not torch.cuda.is_available():
        wrapper['type'] = 'OptimWrapper'
        wrapper.pop('loss_scale', None)
        wrapper.pop('dtype', None)
        print_log('AMP needs a GPU: training in fp32 on the CPU.', logger='current',
                  level=30)


def prepare_distributed(cfg: Config, launcher: str) -> bool:
    """Make a ``--launcher pytorch`` run work on GPUs (NCCL) and on CPUs (gloo) alike.

    MMEngine's pytorch launcher calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. On CPU we start the gloo
    process group ourselves (MMEngine then skips its own init) and wrap without device ids.

    Args:
        cfg: the config (changed in place: launcher, dist backend, model wrapper).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        Whether the run is distributed.
    """
    cfg.launcher = launcher
    distributed = launcher != 'none'
    _use_fp32_on_cpu(cfg)
    if distributed and not torch.cuda.is_available():
        env_cfg = cfg.setdefault('env_cfg', ConfigDict())
        dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
        dist_cfg['backend'] = 'gloo'
        timeout = dist_cfg.get('timeout', 1800)
        if not dist.is_initialized():
            if launcher == 'slurm':
                _slurm_env_to_torch_env()
            dist.init_process_group(backend='gloo',
                                    timeout=datetime.timedelta(seconds=timeout))
        wrapper_cfg = cfg.get('model_wrapper_cfg') or ConfigDict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        wrapper_cfg['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper_cfg
    revert_sync_bn_if_single(cfg, distributed)
    return distributed


_TORN_DOWN = False  # finish_distributed destroyed this process's group


def finish_distributed() -> None:
    """Tear down the process group of a finished run (no-op when there is none).

    Left to interpreter exit, gloo's worker threads can be destroyed while still joinable,
    and a rank that has finished aborts ("terminate called without an active exception",
    SIGABRT), failing a run that completed. This makes it rarer; :func:`exit_distributed_rank`
    removes the rest.
    """
    global _TORN_DOWN
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _TORN_DOWN = True


def exit_distributed_rank() -> None:
    """End a rank whose group :func:`finish_distributed` tore down, without the C++ teardown.

    Even with the group destroyed, a rank could still abort at exit ("terminate called without
    an active exception", 1 in 30 two-process CPU runs; the faulthandler dump shows no Python
    frame left, i.e. static destructors after finalisation). Exit handlers, log files and
    stdio are flushed first, then ``os._exit(0)``. No-op in a process that was not distributed,
    so only a tool's ``__main__`` calls it, after ``main()`` returned.
    """
    if not _TORN_DOWN:
        return
    import atexit
    import logging
    atexit._run_exitfuncs()  # what a normal exit would run, in the same order
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _slurm_env_to_torch_env() -> None:
    # srun sets SLURM_* only; torch's env:// rendezvous wants these.
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        import subprocess
        nodes = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1')


def merge_cli(cfg: Config, args: Any) -> Config:
    """Apply the shared command-line options of tools/train.py and tools/test.py.

    Args:
        cfg: the loaded config.
        args: parsed arguments with ``cfg_options``, ``allow_new_keys``, ``work_dir``.

    Returns:
        The same config, updated.
    """
    if args.cfg_options:
        if not getattr(args, 'allow_new_keys', False):
            validate_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def tool_parser(description: str, config_help: str) -> argparse.ArgumentParser:
    """A parser with the arguments both entry points take (config, work dir, config options,
    image check, launcher); each tool adds its own.

    Args:
        description: The tool's one-line description.
        config_help: Help text of the config argument.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. model.backbone.drop_path_rate=0.2')
    parser.add_argument('--allow-new-keys', action='store_true',
                        help='let --cfg-options add keys the config does not define')
    parser.add_argument('--check-images', action='store_true',
                        help='decode every image of the data sets before the run starts (in '
                        'parallel) and list all unreadable ones; same as check_images = True in '
                        'the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_tool_args(parser: argparse.ArgumentParser,
                    argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse, and export ``LOCAL_RANK`` for launchers that pass ``--local-rank``."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def config_from_args(args: argparse.Namespace, amp: bool = False) -> Config:
    """The run's config: the file, the command-line options, AMP if asked for (fp32 on a CPU,
    decided once in :func:`prepare_distributed`) and the launcher's settings.

    Args:
        args: Arguments of :func:`tool_parser` (plus the tool's own).
        amp: Train with automatic mixed precision.
    """
    cfg = merge_cli(Config.fromfile(args.config), args)
    if args.check_images:
        cfg.check_images = True  # add_reliability_hooks adds ImageCheckHook
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    prepare_distributed(cfg, args.launcher)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """MMEngine's runner of ``cfg`` (or the config's own ``runner_type``), once the model's
    ``num_classes`` is checked against the data, with our reliability hooks (NaN/Inf loss stop,
    skipped-image report, image check)."""
    check_num_classes(cfg)
    add_reliability_hooks(cfg)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Ask the config's visualization hook to draw every test image into ``show_dir``."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise KeyError(f'{cfg.filename}: --show-dir needs default_hooks.visualization')
    hook['draw'] = True
    hook['interval'] = 1
    if cfg.get('default_scope') == 'mmseg':  # mmseg's hook writes through the visualizer
        cfg.visualizer['save_dir'] = show_dir
    else:
        hook['test_out_dir'] = show_dir


def enable_tta(cfg: Config) -> None:
    """Test with the config's ``tta_model`` around its model and its ``tta_pipeline``."""
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise KeyError(f'{cfg.filename}: --tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def add_dump_metric(cfg: Config, out: str) -> None:
    """Also dump the raw predictions to the pickle file ``out``."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: the output file must be a .pkl file')
    dump = ConfigDict(type='DumpDetResults' if cfg.get('default_scope') == 'mmdet'
                      else 'mmengine.DumpResults', out_file_path=out)
    evaluator = cfg.test_evaluator
    cfg.test_evaluator = (list(evaluator) if isinstance(evaluator, (list, tuple))
                          else [evaluator]) + [dump]


def strip_training(cfg: Config) -> None:
    """A test run needs no training parts; mmseg's visualization hook would otherwise build
    the training loop (and demand the training data) through ``runner.iter``."""
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg[key] = None
