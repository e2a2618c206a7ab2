"""The Python steps of tools/gpu/gpu_check.sh (logic in gpu_lib.py, beside this file).

    python tools/gpu/gpu_check.py train-setup WORK_DIR [--images N] [--size S] [--iters N]
    python tools/gpu/gpu_check.py train-summary RUN_DIR OUT_JSON
    python tools/gpu/gpu_check.py verify-bundle BUNDLE
    python tools/gpu/gpu_check.py report OUT_DIR
"""
import argparse
import json
import os
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(osp.dirname(HERE)))  # run from a clone: the repository root
sys.path.insert(0, HERE)  # its sibling gpu_lib.py

import gpu_lib  # noqa: E402

from backbones.analysis.benchmark import machine_info  # noqa: E402

CONFIG = 'configs/detection/cascade_convnext_t_coco.py'


def train_setup(args) -> None:
    """Write the synthetic data and the training config; load that config and push one image
    through its dataset pipeline, so a wrong override fails here and not on the GPU."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import backbones  # noqa: F401
    data = gpu_lib.write_synthetic_coco(osp.join(args.work_dir, 'coco'), args.images,
                                        size=args.size)
    config = osp.join(args.work_dir, 'cascade_convnext_t_amp_50it.py')
    with open(config, 'w') as f:
        f.write(gpu_lib.train_config_text(args.config, osp.join(args.work_dir, 'coco'),
                                          iters=args.iters, num_workers=args.workers))
    cfg = Config.fromfile(config)
    from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        sample = dataset[0]
    shape = tuple(sample['inputs'].shape)
    print(json.dumps(dict(config=config, images=data['images'], annotations=data['annotations'],
                          dataset_len=len(dataset), first_input_shape=shape,
                          max_iters=cfg.train_cfg.max_iters,
                          optim_wrapper=cfg.optim_wrapper.type)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('train-setup', help='synthetic COCO data + the training config')
    p.add_argument('work_dir')
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--images', type=int, default=100)
    p.add_argument('--size', type=int, default=gpu_lib.COCO_IMAGE_SIZE)
    p.add_argument('--iters', type=int, default=50)
    p.add_argument('--workers', type=int, default=4)
    p = sub.add_parser('train-summary', help='iteration time and memory of a run')
    p.add_argument('run_dir')
    p.add_argument('out')
    p = sub.add_parser('verify-bundle', help='check a prepared bundle against its manifest')
    p.add_argument('bundle')
    p = sub.add_parser('report', help='one JSON record and a Markdown table')
    p.add_argument('out_dir')
    args = parser.parse_args(argv)

    if args.cmd == 'train-setup':
        os.makedirs(args.work_dir, exist_ok=True)
        train_setup(args)
    elif args.cmd == 'train-summary':
        summary = gpu_lib.summarize_training(args.run_dir)
        with open(args.out, 'w') as f:
            json.dump(summary, f, indent=2)
        print(json.dumps(summary))
    elif args.cmd == 'verify-bundle':
        problems = gpu_lib.verify_bundle(args.bundle)
        for problem in problems:
            print(f'bundle problem: {problem}', file=sys.stderr)
        if problems:
            sys.exit(1)
        print(f'bundle {args.bundle}: complete')
    else:
        report = gpu_lib.build_report(args.out_dir, machine_info())
        with open(osp.join(args.out_dir, 'gpu_check.json'), 'w') as f:
            json.dump(report, f, indent=2)
        table = gpu_lib.format_table(report)
        with open(osp.join(args.out_dir, 'gpu_check.md'), 'w') as f:
            f.write(table)
        print(table)


if __name__ == '__main__':
    main()
