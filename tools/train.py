"""Train a classification, detection or segmentation config with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp] [--check-images] \
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import backbones  # noqa: E402,F401  (registers our modules, safe checkpoint I/O)
from backbones.datasets.checks import check_num_classes  # noqa: E402
from backbones.engine import (add_reliability_hooks, check_checkpoint_intact,  # noqa: E402
                              check_pretrained_exists, find_resume_checkpoint, finish_distributed,
                              merge_cli, prepare_distributed, use_resumable_loops)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size (auto_scale_lr in the config)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from PATH, or from the latest checkpoint in the work dir when no PATH')
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
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_cli(Config.fromfile(args.config), args)
    if args.check_images:
        cfg.check_images = True  # add_reliability_hooks adds ImageCheckHook
    prepare_distributed(cfg, args.launcher)

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        prepare_distributed(cfg, args.launcher)  # falls back to fp32 on CPU, with a note
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError(f'{args.config}: --auto-scale-lr needs auto_scale_lr.base_batch_size '
                           'in the config')
        cfg.auto_scale_lr.enable = True
    # Exact mid-epoch resumption, NaN/Inf loss stop, skipped-image report (see backbones/engine).
    use_resumable_loops(cfg)
    add_reliability_hooks(cfg)
    check_num_classes(cfg)
    if args.resume == 'auto':
        # The newest intact checkpoint: a truncated latest one is reported and passed over.
        cfg.resume, cfg.load_from = True, find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        check_checkpoint_intact(args.resume)
        cfg.resume, cfg.load_from = True, args.resume
    if not cfg.get('resume'):
        check_pretrained_exists(cfg)

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
