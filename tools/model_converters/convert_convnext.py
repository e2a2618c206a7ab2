"""Convert a ConvNeXt checkpoint between formats.

    python tools/model_converters/convert_convnext.py SRC DST [--format ours|official|mmpretrain]

SRC may be in any format ``backbones.convert_checkpoint`` recognises (official V1/V2/isotropic,
timm, mmpretrain, ours; whole classifiers or detectors with ``backbone.`` keys). DST gets the
backbone weights (classification heads are dropped): ``ours`` saves ``{'state_dict': ...}``,
``official`` saves ``{'model': ...}`` like the official release files, ``mmpretrain`` saves
``{'state_dict': ...}`` with ``backbone.`` keys.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # from a clone

from backbones import models  # noqa: E402
from backbones.engine import load_checkpoint_file, save_checkpoint_atomic  # noqa: E402

WRAPPERS = {'ours': 'state_dict', 'official': 'model', 'mmpretrain': 'state_dict'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='checkpoint to convert (any supported format)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--format', choices=sorted(WRAPPERS), default='ours',
                        help='format of DST (default: ours)')
    parser.add_argument('--keep-final-norm', action='store_true',
                        help="load a classifier's final norm into the last output norm "
                        'instead of dropping it')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        sys.exit(f'error: SRC and DST are the same file ({args.src}); refusing to overwrite')
    try:
        checkpoint = load_checkpoint_file(args.src, map_location='cpu')
        state, fmt = models.convert_and_detect(checkpoint, keep_final_norm=args.keep_final_norm)
        if args.format == 'official':
            state = models.convert_to_official(state)
        elif args.format == 'mmpretrain':
            state = models.convert_to_mmpretrain(state)
    except (OSError, ValueError) as e:
        sys.exit(f'error: cannot convert {args.src}: {e}')
    try:
        save_checkpoint_atomic({WRAPPERS[args.format]: state}, args.dst)
    except OSError as e:
        sys.exit(f'error: cannot write {args.dst}: {e}')
    print(f'{args.src} ({fmt} format) -> {args.dst} ({args.format} format, '
          f'{len(state)} tensors)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
