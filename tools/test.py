"""Evaluate a checkpoint of a classification, detection or segmentation config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--show-dir DIR] \
        [--tta] [--check-images] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

import backbones  # noqa: E402,F401
from backbones.engine import finish_distributed  # noqa: E402
from backbones.engine.cli import (add_dump_metric, build_runner, config_from_args,  # noqa: E402
                                  enable_tta, enable_visualization, parse_tool_args, strip_training,
                                  tool_parser)


def parse_args(argv=None):
    parser = tool_parser('Test (and evaluate) a model', 'test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--show-dir',
                        help='save drawn predictions (detection: WORK_DIR/TIMESTAMP/DIR; '
                        'segmentation: DIR/vis_data/vis_image)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (the config\'s tta_model/tta_pipeline)')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = config_from_args(args)
    cfg.load_from = args.checkpoint
    strip_training(cfg)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.tta:
        enable_tta(cfg)
    if args.out:
        add_dump_metric(cfg, args.out)
    metrics = build_runner(cfg).test()
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
