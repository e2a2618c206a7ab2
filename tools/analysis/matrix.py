"""The evaluation matrix of any set of runs, with the paper's numbers where it has a row.

    python tools/analysis/matrix.py WORK_DIR... [--select last|best] [--no-complexity]
        [--no-flops] [--shape H W] [--out-md FILE] [--out-csv FILE] [--out-png FILE]

Reads what MMEngine wrote in each work dir (the dumped config names the row; metrics and
training times come from */vis_data/scalars.json): top-1 ('accuracy/top1'), box/mask AP
('coco/bbox_mAP', 'coco/segm_mAP', shown in percent like the paper) and mIoU ('mIoU').
Params/GFLOPs are computed from the dumped config (GFLOPs at the paper's resolution unless
--shape). Prints the Markdown table; cells with a paper figure read "ours (paper P, diff)".
"""
import argparse
import os.path as osp
import sys
import warnings

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from backbones.analysis.results import (format_markdown, matrix_rows, plot_matrix,  # noqa: E402
                                        read_run, write_csv, write_markdown)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Results table of MMEngine runs')
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    parser.add_argument('--select', choices=['last', 'best'], default='last',
                        help='which evaluation of a run: the last, or the best by its primary '
                        'metric (top-1, box AP, mIoU)')
    parser.add_argument('--no-complexity', action='store_true',
                        help='do not build the models for params/GFLOPs')
    parser.add_argument('--no-flops', action='store_true', help='params only (fast)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size for GFLOPs (default: the paper\'s for each row)')
    parser.add_argument('--out-md', help='write the Markdown table here')
    parser.add_argument('--out-csv', help='write the table as CSV here')
    parser.add_argument('--out-png', help='write learning curves and metric bars here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning)  # mmseg's deprecation notes
    try:
        runs = [read_run(d, args.select) for d in args.work_dirs]
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'matrix: {e}')
    rows = matrix_rows(runs, complexity=not args.no_complexity, shape=args.shape,
                       flops=not args.no_flops)
    print(format_markdown(rows), end='')
    if args.out_md:
        write_markdown(rows, args.out_md)
    if args.out_csv:
        write_csv(rows, args.out_csv)
    if args.out_png:
        plot_matrix(runs, rows, args.out_png)


if __name__ == '__main__':
    main()
