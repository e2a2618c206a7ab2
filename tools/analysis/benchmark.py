"""Throughput, latency and peak memory of the ConvNeXt backbone, side by side with timm (the
method: ``backbones/analysis/benchmark.py``).

    # eager fp32 inference at 224, batch 32, ours vs timm
    python tools/analysis/benchmark.py --arch tiny --batch 32 --threads 2 --compare timm
    # our fast path + torch.compile against timm eager fp32 (and our plain path too)
    python tools/analysis/benchmark.py --arch tiny --batch 32 --threads 2 --fast --compile \\
        --compare timm --compare-settings eager-fp32 --also-plain
    # detection resolution, training step with / without activation checkpointing
    python tools/analysis/benchmark.py --mode train --input-size 800 1333 --batch 1 --with-cp
    # a whole detector from a config, synthetic inputs
    python tools/analysis/benchmark.py --mode train-model \\
        --config configs/detection/mask_rcnn_convnext_atto_shapes.py --input-size 128 128
    # ours beside MMDetection's own config of the same detector, same weights and inputs
    python tools/analysis/benchmark.py --mode train-model \\
        --config configs/detection/mask_rcnn_convnext_t_coco.py --compare-config \\
        mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import torch

# Run from a clone: the repository root on sys.path (as the other tools do), for backbones.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from backbones.analysis.benchmark import (ARCHS, DTYPES, MODE_DEFAULTS, MODES, run,  # noqa: E402
                                          run_probe)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark ConvNeXt against timm')
    parser.add_argument('--mode', choices=MODES, default='infer',
                        help='infer: backbone inference (224); infer-det / infer-seg: backbone '
                        'inference at 800x1333 / 512x2048, batch 1; train: backbone training '
                        'step (forward, backward, AdamW); train-model: training step of the '
                        'detector/segmentor of --config')
    parser.add_argument('--arch', default='tiny', choices=ARCHS, help='ConvNeXt preset')
    parser.add_argument('--v2', action='store_true', help='ConvNeXt V2 blocks (GRN)')
    parser.add_argument('--config', help='config of --mode train-model')
    parser.add_argument('--compare-config',
                        help='train-model: also run this upstream config with the same weights and '
                        'inputs, stochastic depth off in both (the same losses); PKG::PATH '
                        '(mmdet::, mmseg::) names one installed with the package')
    parser.add_argument('--batch', type=int, help='batch size (default: per mode)')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: per mode)')
    parser.add_argument('--dtype', choices=tuple(DTYPES), default='fp32',
                        help='fp32; bf16 or fp16 run under torch.autocast (fp16 needs a GPU)')
    parser.add_argument('--channels-last', action='store_true',
                        help='model and input in torch.channels_last memory format')
    parser.add_argument('--compile', action='store_true', help='torch.compile the models')
    parser.add_argument('--freeze', action='store_true',
                        help='with --compile, inference: inductor freezing (weights folded in '
                        'as constants, prepacked for oneDNN)')
    parser.add_argument('--fast', action='store_true',
                        help='our eval-mode fast path (fast_inference=True)')
    parser.add_argument('--with-cp', action='store_true',
                        help='activation checkpointing in our blocks (training modes)')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations per model')
    parser.add_argument('--repeats', type=int, default=5, help='timed iterations per model')
    parser.add_argument('--compare', action='append', default=[], choices=('timm', 'mmpretrain'),
                        help='also run this implementation of the same preset (repeatable)')
    parser.add_argument('--compare-settings', choices=('same', 'eager-fp32'), default='same',
                        help='settings of the compared models (and of --also-plain): the same '
                        'as ours, or plain eager fp32 (to rate our fastest mode against them)')
    parser.add_argument('--also-plain', action='store_true',
                        help='also run our plain path with the compared models\' settings')
    parser.add_argument('--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument('--out', help='JSON record path (default: work_dirs/benchmark/...)')
    parser.add_argument('--memory-probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size, batch = MODE_DEFAULTS[args.mode]
    args.input_size = tuple(args.input_size or size)
    args.batch = args.batch or batch
    if args.mode == 'train-model':
        if not args.config:
            parser.error('--mode train-model needs --config')
        if not osp.isfile(args.config):
            parser.error(f'--config {args.config}: no such file')
        if args.compare:
            parser.error('--compare applies to the backbone modes, not train-model')
        if args.compare_config and '::' in args.compare_config:
            package, rel = args.compare_config.split('::', 1)
            try:
                root = osp.dirname(__import__(package).__file__)
            except ImportError:
                parser.error(f'--compare-config {args.compare_config}: no package {package}')
            args.compare_config = osp.join(root, '.mim', 'configs', rel)
        if args.compare_config and not osp.isfile(args.compare_config):
            parser.error(f'--compare-config {args.compare_config}: no such file')
    elif args.compare_config:
        parser.error('--compare-config applies to --mode train-model')
    if args.freeze and not (args.compile and args.mode.startswith('infer')):
        parser.error('--freeze needs --compile and an inference mode (it folds the weights in)')
    if args.dtype == 'fp16' and not args.device.startswith('cuda'):
        parser.error('--dtype fp16 (AMP) needs a GPU; use bf16 on CPU')
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error('--batch and --repeats must be >= 1, --warmup >= 0')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        run_probe(args)
        return {}
    return run(args, script=osp.abspath(__file__))


if __name__ == '__main__':
    main()
