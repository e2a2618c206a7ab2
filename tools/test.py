"""Evaluate a checkpoint of a classification, detection or segmentation config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--show-dir DIR] \
        [--tta] [--allow-partial] [--check-images] [--cfg-options k=v ...] \
        [--launcher none|pytorch|slurm|mpi]

CHECKPOINT may be one of ours (MMEngine), an official ConvNeXt detection / segmentation release
(MMDetection 2.x / MMSegmentation 0.x through mmcv 1.x: ``meta``, ``state_dict``, ``optimizer``,
``amp``; only ``state_dict`` is used) or any format the load path converts. Before evaluating,
its tensors must fit the config's model exactly: none missing, none unexpected, none of another
shape. Otherwise the run stops with one
:class:`~backbones.engine.hooks.CheckpointMismatchError` naming the file and the config, with
the misfit counted per top-level module (backbone, neck, rpn_head, roi_head, decode_head, ...),
the first shape mismatches, and, where it can tell, a wrong backbone size or number of classes
and what the checkpoint's own ``meta`` says about its model.

``--allow-partial`` evaluates such a checkpoint anyway (the tensors that fit are loaded, the
others keep their initial values) and only logs the same report as a warning.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

import backbones  # noqa: E402,F401
from backbones.engine import exit_distributed_rank, finish_distributed  # noqa: E402
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
    parser.add_argument('--allow-partial', action='store_true',
                        help='evaluate a checkpoint that does not fit the model exactly (missing, '
                        'unexpected or reshaped tensors) with a warning instead of an error')
    return parse_tool_args(parser, argv)


def require_exact_fit(cfg, warn_only: bool = False) -> None:
    """Make the run's ``CheckpointMatchHook`` demand that the checkpoint fits exactly.

    Args:
        cfg: The test config (changed in place; a hook the config sets up keeps its other
            settings).
        warn_only: Log the misfit report instead of raising (``--allow-partial``).
    """
    hooks = list(cfg.get('custom_hooks') or [])
    mine = next((h for h in hooks
                 if isinstance(h, dict) and h.get('type') == 'CheckpointMatchHook'), None)
    if mine is None:
        mine = dict(type='CheckpointMatchHook')
        hooks.append(mine)
    mine.update(exact=True, warn_only=warn_only)
    cfg.custom_hooks = hooks


def build_test_runner(args):
    """The runner of a test run: the config of ``args`` with the checkpoint as ``load_from``
    (checked for an exact fit when loaded), no training parts, and the drawing, TTA and dump
    options applied.

    Args:
        args: What :func:`parse_args` returned.
    """
    cfg = config_from_args(args)
    cfg.load_from = args.checkpoint
    strip_training(cfg)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.tta:
        enable_tta(cfg)
    if args.out:
        add_dump_metric(cfg, args.out)
    require_exact_fit(cfg, warn_only=args.allow_partial)
    return build_runner(cfg)


def main(argv=None):
    args = parse_args(argv)
    metrics = build_test_runner(args).test()
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
    exit_distributed_rank()  # after main() returned: skips the C++ teardown of a rank
