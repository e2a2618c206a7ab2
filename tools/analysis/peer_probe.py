"""Plain-PyTorch peer runs on the shapes data (timm models, a bare loop, none of our pipeline).

    python tools/analysis/peer_probe.py cls [--models convnext_atto convnext_atto:bn resnet18]
        [--steps 744] [--lr 2e-3] [--eval-every 186] [--data data/shapes]
        [--out work_dirs/peer_probe] [--threads 1]
    python tools/analysis/peer_probe.py seg [--models convnext_atto resnet18] [--steps 400]
        [--lr 1e-3] [--eval-every 100] ...

``cls`` trains classifiers on the demo's crops (top-1), ``seg`` a minimal FPN-style segmenter on
its scenes (mIoU). Writes OUT/<task>.csv and OUT/<task>.png (curves). Models run one after
another; see backbones/analysis/peer_probe.py for what is and is not shared with the demo.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from backbones.analysis.peer_probe import (plot_records, train_classifier,  # noqa: E402
                                           train_segmenter, write_records)

DEFAULTS = dict(cls=dict(models=['convnext_atto', 'convnext_atto:ln', 'convnext_atto:bn',
                                 'resnet18'], steps=744, lr=2e-3, eval_every=186),
                seg=dict(models=['convnext_atto', 'resnet18'], steps=400, lr=1e-3,
                         eval_every=100))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plain-PyTorch peer runs on the shapes data')
    parser.add_argument('task', choices=['cls', 'seg'])
    parser.add_argument('--models', nargs='+', help='timm model specs (name or name:bn / '
                        'name:ln for ConvNeXt); default: see the module docstring')
    parser.add_argument('--steps', type=int, help='optimizer steps per model')
    parser.add_argument('--lr', type=float, help='peak lr (AdamW, one-cycle)')
    parser.add_argument('--eval-every', type=int, help='evaluate every N steps')
    parser.add_argument('--batch', type=int, help='batch size (default 32 cls, 8 seg)')
    parser.add_argument('--data', default='data/shapes', help='root of the shapes data')
    parser.add_argument('--out', default='work_dirs/peer_probe', help='output folder')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for key, value in DEFAULTS[args.task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch is None:
        args.batch = 32 if args.task == 'cls' else 8
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train = train_classifier if args.task == 'cls' else train_segmenter
    root = osp.join(args.data, 'cls' if args.task == 'cls' else 'ade')
    records = []
    try:
        for spec in args.models:
            records += train(spec, root, args.steps, lr=args.lr, batch=args.batch,
                             eval_every=args.eval_every, seed=args.seed)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'peer_probe: {e}')
    metric = 'top1' if args.task == 'cls' else 'miou'
    csv_path, png_path = (osp.join(args.out, f'{args.task}.{ext}') for ext in ('csv', 'png'))
    write_records(records, csv_path)
    plot_records(records, metric, png_path)
    print(f'peer_probe: wrote {csv_path} and {png_path}')


if __name__ == '__main__':
    main()
