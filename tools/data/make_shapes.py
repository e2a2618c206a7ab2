"""Write the synthetic shapes data set in COCO, ADE20K and ImageFolder layouts.

    python tools/data/make_shapes.py [--out data/shapes] [--seed 0] [--size 128] \
        [--det-train 400] [--det-val 60] [--seg-train 400] [--seg-val 60] \
        [--cls-train 3000] [--cls-val 500] [--layouts coco ade cls] [--easy]

Deterministic: the same arguments give byte-identical files. See tools/data/README.md.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from backbones.datasets.shapes import make_shapes  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate the synthetic shapes data set')
    parser.add_argument('--out', default='data/shapes', help='output root folder')
    parser.add_argument('--seed', type=int, default=0, help='data-set seed')
    parser.add_argument('--size', type=int, default=128, help='image height and width')
    parser.add_argument('--det-train', type=int, default=400, help='COCO train images')
    parser.add_argument('--det-val', type=int, default=60, help='COCO val images')
    parser.add_argument('--seg-train', type=int, default=400, help='ADE training images')
    parser.add_argument('--seg-val', type=int, default=60, help='ADE validation images')
    parser.add_argument('--cls-train', type=int, default=3000,
                        help='ImageFolder train crops (cut from scenes)')
    parser.add_argument('--cls-val', type=int, default=500, help='ImageFolder val crops')
    parser.add_argument('--max-shapes', type=int, default=4,
                        help='most shapes per detection/segmentation image')
    parser.add_argument('--layouts', nargs='+', default=['coco', 'ade', 'cls'],
                        choices=['coco', 'ade', 'cls'], help='layouts to write')
    parser.add_argument('--easy', action='store_true',
                        help='scenes without the clutter: upright shapes in flat colours, no '
                        'distractor lines, no occlusion')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    summary = make_shapes(args.out, seed=args.seed, size=args.size, det_train=args.det_train,
                          det_val=args.det_val, seg_train=args.seg_train, seg_val=args.seg_val,
                          cls_train=args.cls_train, cls_val=args.cls_val,
                          max_shapes=args.max_shapes, layouts=args.layouts, easy=args.easy)
    for layout, info in summary.items():
        print(f'{layout}: {info}')
    print(f'done in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
