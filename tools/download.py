"""List the model zoo and download released checkpoints into the cache (like `mim download`).

    python tools/download.py --list [--task classification|pretraining|detection|segmentation]
    python tools/download.py NAME [NAME ...] [--dest DIR]

NAME is a zoo name (``convnext_tiny_1k_224``), its file name, or a detection/segmentation
config stem (``cascade_convnext_t_coco``, ``cascade_convnext_t``). Each fetched entry prints as
``NAME PATH``. The cache is ``$CONVNEXT_CHECKPOINT_DIR`` (default: the torch hub cache);
``$CONVNEXT_ZOO_MIRROR`` replaces the base URL ``https://dl.fbaipublicfiles.com/convnext/``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone

from backbones.analysis.paper import paper_metrics  # noqa: E402
from backbones.checkpoint.hub import CheckpointDownloadError, cache_dir, download  # noqa: E402
from backbones.zoo import TASKS, load_zoo  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='List and download released ConvNeXt '
                                     'checkpoints')
    parser.add_argument('names', nargs='*', metavar='NAME', help='zoo entries to download')
    parser.add_argument('--list', action='store_true', help='list the zoo')
    parser.add_argument('--task', choices=TASKS, help='with --list: only this task')
    parser.add_argument('--dest', help='download into DIR instead of the cache')
    args = parser.parse_args(argv)
    if not args.list and not args.names:
        parser.error('give NAME(s) to download, or --list')
    return args, parser


def _metric(entry) -> str:
    figures = paper_metrics(entry)
    return ' '.join(f'{k}={v}' for k, v in figures.items()) or '-'


def print_table(task=None) -> None:
    entries = load_zoo().select(task)
    rows = [(e.name, e.task, e.arch + (' (V2)' if e.v2 else ''), e.pretrain,
             str(e.resolution or '-'), _metric(e), e.config or '-') for e in entries]
    head = ('name', 'task', 'arch', 'pretrain', 'res', 'paper', 'config')
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for row in [head] + rows:
        print('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f'\n{len(rows)} entries; cache: {cache_dir()}', file=sys.stderr)


def main(argv=None):
    args, parser = parse_args(argv)
    if args.list:
        print_table(args.task)
    zoo = load_zoo()
    try:
        entries = [zoo.get(name) for name in args.names]
    except KeyError as e:
        parser.error(e.args[0])
    for entry in entries:
        target = osp.join(args.dest, entry.filename) if args.dest else None
        try:
            path = download(entry.url, target, sha256=entry.sha256)
        except CheckpointDownloadError as e:
            sys.exit(f'{entry.name}: {e}')
        print(entry.name, path, flush=True)


if __name__ == '__main__':
    main()
