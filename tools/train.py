"""Train a classification, detection or segmentation config with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [PATH]] [--amp] [--check-images] \
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

import backbones  # noqa: E402,F401  (registers our modules, safe checkpoint I/O)
from backbones.engine import (check_checkpoint_intact, exit_distributed_rank,  # noqa: E402
                              fetch_pretrained, find_resume_checkpoint, finish_distributed,
                              use_resumable_loops)
from backbones.engine.cli import (build_runner, config_from_args, parse_tool_args,  # noqa: E402
                                  tool_parser)


def parse_args(argv=None):
    parser = tool_parser('Train a model', 'train config file path')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (fp32 on a CPU, with a note)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size (auto_scale_lr in the config)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from PATH, or from the latest checkpoint in the work dir when no PATH')
    return parse_tool_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = config_from_args(args, amp=args.amp)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError(f'{args.config}: --auto-scale-lr needs auto_scale_lr.base_batch_size '
                           'in the config')
        cfg.auto_scale_lr.enable = True
    use_resumable_loops(cfg)  # exact mid-epoch resumption (see backbones/engine/resume.py)
    if args.resume == 'auto':
        # The newest intact checkpoint: a truncated latest one is reported and passed over.
        cfg.resume, cfg.load_from = True, find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        check_checkpoint_intact(args.resume)
        cfg.resume, cfg.load_from = True, args.resume
    if not cfg.get('resume'):
        fetch_pretrained(cfg)
    build_runner(cfg).train()
    finish_distributed()


if __name__ == '__main__':
    main()
    exit_distributed_rank()  # after main() returned: skips the C++ teardown of a rank
