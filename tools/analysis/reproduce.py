"""Evaluate the released COCO / ADE20K models with our configs, beside the paper's numbers.

    python tools/analysis/reproduce.py --task det|seg [--models NAME ...] [--zoo FILE]
        [--work-dir DIR] [--gpus N] [--flops] [--cfg-options k=v ...]

For every detection (``det``) or segmentation (``seg``) entry of the model zoo (or those named:
zoo names or config stems such as ``cascade_convnext_t``), the released checkpoint is fetched
into the cache (``tools/download.py``), evaluated by ``tools/test.py CONFIG CHECKPOINT`` (with
``--gpus N`` > 1: ``tools/dist_test.sh``, i.e. torchrun) on the data under ``data/``, and the
results are gathered into WORK_DIR/matrix.{md,csv} with the paper's figures and the
differences (the table of ``tools/analysis/matrix.py``). Progress goes to stderr; each model's
log stays in WORK_DIR/<config stem>/.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from backbones.analysis.results import (format_markdown, matrix_rows, read_run,  # noqa: E402
                                        write_csv, write_markdown)
from backbones.checkpoint.hub import CheckpointDownloadError, download  # noqa: E402
from backbones.zoo import ZOO_FILE, load_zoo  # noqa: E402

TASKS = dict(det='detection', seg='segmentation')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate released models against the paper')
    parser.add_argument('--task', choices=sorted(TASKS), required=True)
    parser.add_argument('--models', nargs='+', metavar='NAME',
                        help='zoo names or config stems (default: every model of the task)')
    parser.add_argument('--zoo', default=ZOO_FILE, help='model zoo table (default: the package\'s)')
    parser.add_argument('--work-dir', default=None,
                        help='where logs and the matrix go (default: work_dirs/reproduce_TASK)')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes per model (> 1: tools/dist_test.sh with torchrun)')
    parser.add_argument('--flops', action='store_true',
                        help='also count GFLOPs at the paper\'s resolution (minutes per model)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every tools/test.py run (e.g. another data_root)')
    return parser.parse_args(argv)


def select(zoo, task: str, names):
    """The zoo entries to evaluate, in table order or in the order named."""
    if not names:
        return zoo.select(task)
    entries = []
    for name in names:
        entry = zoo.get(name)
        if entry.task != task:
            raise KeyError(f'{name!r} ({entry.name}) is a {entry.task} entry of {zoo.path!r}, '
                           f'not {task}')
        entries.append(entry)
    return entries


def evaluate(entry, checkpoint: str, work_dir: str, gpus: int, options) -> None:
    """Run tools/test.py (or dist_test.sh) on one entry; raise with its log tail on failure."""
    config = osp.join(REPO, entry.config_path)
    if gpus > 1:
        cmd = ['bash', osp.join(REPO, 'tools', 'dist_test.sh'), config, checkpoint, str(gpus)]
    else:
        cmd = [sys.executable, osp.join(REPO, 'tools', 'test.py'), config, checkpoint]
    cmd += ['--work-dir', work_dir] + (['--cfg-options', *options] if options else [])
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, 'reproduce.log')
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{entry.name}: {" ".join(cmd)} exited {proc.returncode}; the end of '
                           f'{log}:\n{tail}')


def main(argv=None):
    args = parse_args(argv)
    task = TASKS[args.task]
    zoo = load_zoo(osp.abspath(args.zoo))
    try:
        entries = select(zoo, task, args.models)
    except KeyError as e:
        raise SystemExit(f'reproduce: {e.args[0]}')
    missing = [e.name for e in entries if not e.config_path
               or not osp.isfile(osp.join(REPO, e.config_path))]
    if missing:
        raise SystemExit(f'reproduce: no config of ours for {", ".join(missing)} in {args.zoo}')
    work_root = args.work_dir or osp.join('work_dirs', f'reproduce_{args.task}')
    runs = []
    for i, entry in enumerate(entries, 1):
        print(f'[{i}/{len(entries)}] {entry.name} -> {entry.config_path}', file=sys.stderr,
              flush=True)
        try:
            checkpoint = download(entry.url, sha256=entry.sha256)
        except CheckpointDownloadError as e:
            raise SystemExit(f'reproduce: {entry.name}: {e}')
        start = time.time()
        work_dir = osp.join(work_root, entry.config)
        evaluate(entry, checkpoint, work_dir, args.gpus, args.cfg_options)
        run = read_run(work_dir)
        runs.append(run)
        shown = ', '.join(f'{k} {v:.1f}' for k, v in run.values.items())
        print(f'[{i}/{len(entries)}] {entry.name}: {shown} ({time.time() - start:.0f} s)',
              file=sys.stderr, flush=True)
    rows = matrix_rows(runs, flops=args.flops)
    for row in rows:
        row['train_time_s'] = None  # evaluation only
    write_markdown(rows, osp.join(work_root, 'matrix.md'))
    write_csv(rows, osp.join(work_root, 'matrix.csv'))
    print(format_markdown(rows), end='')
    print(f'matrix: {osp.join(work_root, "matrix.md")}, {osp.join(work_root, "matrix.csv")}',
          file=sys.stderr)
    return rows


if __name__ == '__main__':
    main()
