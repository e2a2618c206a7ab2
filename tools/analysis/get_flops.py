"""Parameters and FLOPs of the full model of a classification, detection or segmentation config.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--json]

FLOPs follow the paper: mmengine.analysis.FlopAnalyzer, one multiply-add = one
FLOP, eval mode, one zero image of (H, W); the default shape is the paper's for the config's
row, else the task's convention (detection 800x1280, segmentation crop x 4 crop,
classification 224x224). Two-stage detectors run 1000 fixed proposals through every box head
and 100 through every mask head, as the paper's tool did.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs of a config\'s model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='N',
                        help='input size: H W, or one side for a square (default: the '
                        'paper\'s resolution for the config)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object (params, flops, shape, task, config)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise SystemExit(f'get_flops: config file not found: {args.config}')
    # Imported after the cheap checks: torch, MMEngine and the registries take seconds.
    from backbones.analysis.complexity import config_complexity, load_config, task_of
    shape = None
    if args.shape:
        if len(args.shape) > 2:
            raise SystemExit(f'--shape takes H W or one side, got {args.shape}')
        shape = tuple(args.shape) * (2 // len(args.shape))
    cfg = load_config(args.config)
    result = config_complexity(cfg, shape=shape)
    out = dict(config=args.config, task=task_of(cfg), shape=list(result.shape),
               params=result.params, flops=result.flops)
    if args.json:
        print(json.dumps(out))
    else:
        h, w = result.shape
        print(f'{args.config} ({out["task"]}, input {h}x{w})\n'
              f'  params: {result.params_m:.2f} M ({result.params})\n'
              f'  FLOPs:  {result.gflops:.2f} G ({result.flops}; one multiply-add = one FLOP)')


if __name__ == '__main__':
    main()
