"""`make demo`: the paper's evaluation matrix in miniature, on the synthetic shapes data.

    python tools/demo.py [--work-dir work_dirs/demo] [--data data/shapes] [--jobs 2] [--reduced]
                         [--seeds N]

Writes the shapes data, trains every stage of ``STAGES`` in tools/demo_lib/stages.py (real
tools/train.py processes, two at a time, one thread each, evaluated with the real evaluators),
and writes the matrix to WORK_DIR/matrix.{md,csv,png}. A finished stage is reused; an
interrupted one resumes from its last checkpoint. `--reduced` runs the same code path with a few
iterations per stage. `--seeds N` trains every stage under seeds 0..N-1 (each fine-tuning from
its own seed's pre-training; seed 0 is the one-seed run, so its finished stages are reused) and
writes each cell's mean with its spread (std, min, max).
"""
import argparse
import os.path as osp
import sys

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(TOOLS))  # run from a clone: the repository root
sys.path.insert(0, TOOLS)  # demo_lib/ beside this file

from demo_lib import run_demo  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the evaluation-matrix demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data', default='data/shapes')
    parser.add_argument('--jobs', type=int, default=2,
                        help='training runs at once (one CPU thread each)')
    parser.add_argument('--reduced', action='store_true',
                        help='a few iterations per stage: the same code path, in minutes')
    parser.add_argument('--seeds', type=int, default=1,
                        help='replicates of every stage (seeds 0..N-1); the matrix gives the '
                        'mean and spread of each cell')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds must be at least 1, got {args.seeds}')
    return args


def main(argv=None):
    args = parse_args(argv)
    run_demo(args.work_dir, args.data, jobs=args.jobs, reduced=args.reduced,
             seeds=args.seeds)


if __name__ == '__main__':
    main()
