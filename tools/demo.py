"""`make demo`: the smallest end-to-end job of the toolkit on the embedded synthetic data.

    python tools/demo.py [--work-dir work_dirs/demo] [--data data/shapes] [--iters N]

Stages, each a real process of the same tools users run:
  1. tools/data/make_shapes.py writes the deterministic shapes data (COCO, ADE, ImageFolder);
  2. tools/train.py trains the Mask R-CNN ConvNeXt-atto demo config on the COCO-format split,
     and evaluates it at the end with MMDetection's CocoMetric (pycocotools) on every val image.
A stage whose output exists is reused, so a second run only reprints the results.
(The full evaluation matrix, pre-training and segmentation join it with the demo issue.)
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET_CONFIG = 'configs/detection/mask_rcnn_convnext_atto_shapes.py'
# MMEngine's per-interval log line, e.g. "Iter(train) [ 40/400] ... loss: 2.07": our progress.
PROGRESS = re.compile(r'Iter\((\w+)\)\s*\[\s*(\d+)/(\d+)\](?:.*?\sloss: ([0-9.]+))?')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the end-to-end demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data', default='data/shapes')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the demo config\'s)')
    return parser.parse_args(argv)


def run_stage(name, cmd, log_file):
    """Run one stage as a subprocess, streaming its output to ``log_file``."""
    start = time.time()
    print(f'[demo] {name}: running (log: {log_file})', flush=True)
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    with open(log_file, 'w') as log:
        proc = subprocess.Popen([sys.executable] + cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            # MMEngine's per-interval lines are the progress display of a training stage.
            m = PROGRESS.search(line)
            if m:
                print(f'   {m.group(1)} {m.group(2)}/{m.group(3)}'
                      + (f'  loss {m.group(4)}' if m.group(4) else ''), flush=True)
        if proc.wait() != 0:
            raise SystemExit(f'[demo] {name} failed (exit {proc.returncode}); see {log_file}')
    return time.time() - start


def latest_metrics(work_dir):
    """The last evaluation line MMEngine wrote to a run's scalars file."""
    found = None
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                for line in f:
                    row = json.loads(line)
                    if any(k.startswith('coco/') for k in row):
                        found = row
    return found


def main(argv=None):
    args = parse_args(argv)
    work = osp.abspath(args.work_dir)
    data = osp.abspath(args.data)

    if osp.isfile(osp.join(data, 'coco', 'annotations', 'instances_val.json')):
        print(f'[demo] data: reusing {data}')
    else:
        secs = run_stage('data', ['tools/data/make_shapes.py', '--out', data],
                         osp.join(work, 'logs', 'data.log'))
        print(f'[demo] data: written to {data} in {secs:.0f} s')

    det_dir = osp.join(work, 'mask_rcnn_convnext_atto_shapes')
    last = osp.join(det_dir, 'last_checkpoint')
    if osp.isfile(last):
        print(f'[demo] train: reusing {open(last).read().strip()}')
    else:
        opts = []
        if osp.abspath(args.data) != osp.join(REPO, 'data', 'shapes'):
            coco = osp.join(data, 'coco')
            ann = osp.join(coco, 'annotations', 'instances_val.json')
            opts += [f'{split}_dataloader.dataset.data_root={coco}/'
                     for split in ('train', 'val', 'test')]
            opts += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
        if args.iters:
            opts += [f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}']
        cmd = ['tools/train.py', DET_CONFIG, '--work-dir', det_dir]
        secs = run_stage('train', cmd + (['--cfg-options'] + opts if opts else []),
                         osp.join(work, 'logs', 'train_mask_rcnn.log'))
        print(f'[demo] train: Mask R-CNN ConvNeXt-atto trained in {secs / 60:.1f} min')

    metrics = latest_metrics(det_dir)
    if metrics is None:
        raise SystemExit(f'[demo] no evaluation found under {det_dir}')
    print('[demo] result on the shapes val split (CocoMetric, pycocotools):')
    print(f"   box AP {metrics.get('coco/bbox_mAP', float('nan')):.3f}   "
          f"mask AP {metrics.get('coco/segm_mAP', float('nan')):.3f}   "
          f"box AP50 {metrics.get('coco/bbox_mAP_50', float('nan')):.3f}")


if __name__ == '__main__':
    main()
