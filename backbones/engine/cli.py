"""What tools/train.py and tools/test.py share: their common arguments, the config they build
from them, and the config rewrites of a test run (TTA, drawing, dumping predictions)."""
import argparse
import os
from typing import List, Optional

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from backbones.datasets.checks import check_num_classes
from .hooks import add_reliability_hooks
from .launch import merge_cli, prepare_distributed


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
