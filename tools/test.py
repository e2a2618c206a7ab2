"""Evaluate a checkpoint of a classification, detection or segmentation config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--show-dir DIR] \
        [--tta] [--check-images] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmengine.config import Config, ConfigDict, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import backbones  # noqa: E402,F401
from backbones.datasets.checks import check_num_classes  # noqa: E402
from backbones.engine import (add_reliability_hooks, finish_distributed, merge_cli,  # noqa: E402
                              prepare_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--show-dir',
                        help='save drawn predictions (detection: WORK_DIR/TIMESTAMP/DIR; '
                        'segmentation: DIR/vis_data/vis_image)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (the config\'s tta_model/tta_pipeline)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--allow-new-keys', action='store_true',
                        help='let --cfg-options add keys the config does not define')
    parser.add_argument('--check-images', action='store_true',
                        help='decode every image of the data sets before the run starts (in '
                        'parallel) and list all unreadable ones; same as check_images = True in '
                        'the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_visualization(cfg, show_dir):
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


def enable_tta(cfg):
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise KeyError(f'{cfg.filename}: --tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def add_dump_metric(cfg, out):
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: the output file must be a .pkl file')
    dump = ConfigDict(type='DumpDetResults' if cfg.get('default_scope') == 'mmdet'
                      else 'mmengine.DumpResults', out_file_path=out)
    evaluator = cfg.test_evaluator
    cfg.test_evaluator = (list(evaluator) if isinstance(evaluator, (list, tuple))
                          else [evaluator]) + [dump]


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_cli(Config.fromfile(args.config), args)
    if args.check_images:
        cfg.check_images = True  # add_reliability_hooks adds ImageCheckHook
    prepare_distributed(cfg, args.launcher)
    cfg.load_from = args.checkpoint
    # A test run needs no training parts; mmseg's visualization hook would otherwise build the
    # training loop (and demand the training data) through runner.iter. All four go together.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg[key] = None
    check_num_classes(cfg)
    add_reliability_hooks(cfg)  # reports images skipped by CheckedLoadImageFromFile
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.tta:
        enable_tta(cfg)
    if args.out:
        add_dump_metric(cfg, args.out)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    metrics = runner.test()
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
