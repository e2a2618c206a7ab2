"""`make demo`: the paper's evaluation matrix in miniature, on the synthetic shapes data.

    python tools/demo.py [--work-dir work_dirs/demo] [--data data/shapes] [--jobs 2] [--reduced]

Stages, each a real process of the tools users run (tools/data/make_shapes.py,
tools/train.py), evaluated at the end of training with the real evaluators (TopKAccuracy,
MMDetection's CocoMetric, MMSegmentation's IoUMetric) on the val splits:

  1. data      the deterministic shapes data (ImageFolder, COCO and ADE20K layouts);
  2. pretrain  ConvNeXt-atto classifier on the ImageFolder split;
  3. the downstream rows: Mask R-CNN, Cascade Mask R-CNN and UperNet fine-tuned from the
     pre-trained backbone, and Mask R-CNN from scratch;
  All training runs share the cores, one thread each, two at a time: the from-scratch row
  starts beside the pre-training, the fine-tuned ones as soon as it is done.
  4. the matrix (params, GFLOPs, top-1, box AP, mask AP, mIoU, train time) printed and written
     to WORK_DIR/matrix.{md,csv,png} (the PNG: learning curves and metric bars).

A finished stage is reused; an interrupted one resumes from its last checkpoint. `--reduced`
runs the same code path with a few iterations per stage (the test suite's version).
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

CLS_CONFIG = 'configs/classification/convnext_atto_shapes.py'
MASK_RCNN = 'configs/detection/mask_rcnn_convnext_atto_shapes.py'
CASCADE = 'configs/detection/cascade_convnext_atto_shapes.py'
UPERNET = 'configs/segmentation/upernet_convnext_atto_shapes.py'
MARKER = 'demo_stage.json'

# MMEngine's per-interval log lines: "Iter(train) [ 40/400] ... loss: 2.07" or
# "Epoch(train) [3][12/18] ... loss: 1.1".
ITER_LINE = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\].*?\sloss: ([0-9.]+)')
EPOCH_LINE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\].*?\sloss: ([0-9.]+)')


@dataclass
class Stage:
    """One training run of the demo.

    Args:
        key: Work-dir name under the demo's work dir.
        label: Row name in the matrix.
        config: The config it trains.
        kind: ``'cls'``, ``'det'`` or ``'seg'`` (which data paths it needs).
        pretrained: Start the backbone from the pre-training stage's checkpoint.
        length: Training length: epochs for ``cls``, iterations otherwise.
        reduced: The length in ``--reduced`` runs.
    """
    key: str
    label: str
    config: str
    kind: str
    pretrained: bool
    length: int
    reduced: int
    progress: Dict[str, float] = field(default_factory=dict)


PRETRAIN = Stage('pretrain_convnext_atto', 'ConvNeXt-atto classifier (shapes pre-training)',
                 CLS_CONFIG, 'cls', False, length=8, reduced=1)
# In the matrix's row order.
DOWNSTREAM = [
    Stage('cascade_convnext_atto_pretrained', 'Cascade Mask R-CNN, ConvNeXt-atto, pre-trained',
          CASCADE, 'det', True, length=300, reduced=2),
    Stage('upernet_convnext_atto_pretrained', 'UperNet, ConvNeXt-atto, pre-trained', UPERNET,
          'seg', True, length=400, reduced=2),
    Stage('mask_rcnn_convnext_atto_pretrained', 'Mask R-CNN, ConvNeXt-atto, pre-trained',
          MASK_RCNN, 'det', True, length=300, reduced=2),
    Stage('mask_rcnn_convnext_atto_scratch', 'Mask R-CNN, ConvNeXt-atto, from scratch',
          MASK_RCNN, 'det', False, length=300, reduced=2),
]

# Workers take the first stage that can start in this order: the longest (Cascade) as soon as
# the pre-training is done, the from-scratch row beside the pre-training, the short UperNet
# last, so two workers end together.
RUN_ORDER = ['pretrain_convnext_atto', 'cascade_convnext_atto_pretrained',
             'mask_rcnn_convnext_atto_scratch', 'mask_rcnn_convnext_atto_pretrained',
             'upernet_convnext_atto_pretrained']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the evaluation-matrix demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data', default='data/shapes')
    parser.add_argument('--jobs', type=int, default=2,
                        help='training runs at once (one CPU thread each)')
    parser.add_argument('--reduced', action='store_true',
                        help='a few iterations per stage: the same code path, in minutes')
    return parser.parse_args(argv)


def data_options(kind: str, data: str) -> List[str]:
    """``--cfg-options`` pointing a demo config at the data under ``data``."""
    if kind == 'cls':
        root = osp.join(data, 'cls')
        return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    if kind == 'det':
        root = osp.join(data, 'coco') + '/'
        ann = root + 'annotations/instances_val.json'
        return ([f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
                + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'])
    root = osp.join(data, 'ade')
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]


def length_options(stage: Stage, reduced: bool) -> List[str]:
    n = stage.reduced if reduced else stage.length
    # Reduced runs log every iteration, so the matrix still gets their losses and times.
    logging = ['default_hooks.logger.interval=1'] if reduced else []
    # The decay (second scheduler of every demo config) ends with the run; reduced runs stop
    # inside the warm-up, where it never starts.
    schedule = [] if reduced else [f'param_scheduler.1.end={n}']
    if stage.kind == 'cls':
        return [f'train_cfg.max_epochs={n}', f'train_cfg.val_interval={n}'] + schedule + logging
    return [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}'] + schedule + logging


def best_checkpoint(work_dir: str) -> str:
    """The checkpoint of the last epoch/iteration of a finished run."""
    from backbones.engine import read_last_checkpoint
    path = read_last_checkpoint(work_dir)
    if path is None:
        raise FileNotFoundError(f'{work_dir}: no last_checkpoint; the run saved no checkpoint')
    return path


class Progress:
    """One status line for all running stages: a bar per stage, redrawn in place on a
    terminal, printed every ``interval`` seconds otherwise (logs, CI)."""

    def __init__(self, interval: float = 30.0) -> None:
        self.tty = sys.stdout.isatty()
        self.interval = 0.5 if self.tty else interval
        self.running: Dict[str, Stage] = {}
        self.last = 0.0
        self.lock = threading.Lock()

    def update(self, stage: Stage, force: bool = False) -> None:
        with self.lock:
            self.running[stage.key] = stage
            now = time.time()
            if not force and now - self.last < self.interval:
                return
            self.last = now
            parts = []
            for s in self.running.values():
                frac = s.progress.get('fraction', 0.0)
                bar = '#' * int(frac * 20)
                loss = s.progress.get('loss')
                parts.append(f'{s.key[:28]:28s} [{bar:20s}] {frac * 100:3.0f}%'
                             + (f' loss {loss:.3f}' if loss is not None else ''))
            line = '   ' + '  |  '.join(parts)
            if self.tty:
                sys.stdout.write('\r' + line[:200].ljust(200))
            else:
                sys.stdout.write(line + '\n')
            sys.stdout.flush()

    def done(self, stage: Stage, message: str) -> None:
        with self.lock:
            self.running.pop(stage.key, None)
            if self.tty:
                sys.stdout.write('\r' + ' ' * 200 + '\r')
            print(message, flush=True)


def run_stage(stage: Stage, work: str, data: str, reduced: bool, threads: int,
              progress: Progress, pretrained: Optional[str] = None) -> dict:
    """Train (or resume, or reuse) one stage; returns its marker record."""
    work_dir = osp.join(work, stage.key)
    marker = osp.join(work_dir, MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            record = json.load(f)
        progress.done(stage, f'[demo] {stage.key}: reusing the finished run '
                             f'({record["seconds"] / 60:.1f} min)')
        return record
    os.makedirs(work_dir, exist_ok=True)
    cmd = [sys.executable, 'tools/train.py', stage.config, '--work-dir', work_dir]
    resuming = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    if resuming:
        cmd.append('--resume')
    options = data_options(stage.kind, data) + length_options(stage, reduced)
    if stage.pretrained:
        # The detection demos have init_cfg=None (replaced whole), the segmentation one no key.
        cmd.append('--allow-new-keys')
        if stage.kind == 'det':
            options.append('model.backbone.init_cfg._delete_=True')
        options += ['model.backbone.init_cfg.type=Pretrained',
                    f'model.backbone.init_cfg.checkpoint={pretrained}']
    cmd += ['--cfg-options'] + options
    log_file = osp.join(work, 'logs', f'{stage.key}.log')
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    print(f'[demo] {stage.key}: {"resuming" if resuming else "training"} '
          f'{stage.config} (log: {log_file})', flush=True)
    partial = osp.join(work_dir, 'demo_seconds.json')
    earlier = json.load(open(partial))['seconds'] if resuming and osp.isfile(partial) else 0.0
    start = time.time()
    total = stage.reduced if reduced else stage.length
    with open(log_file, 'a') as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            m = ITER_LINE.search(line)
            e = EPOCH_LINE.search(line)
            if m:
                stage.progress = dict(fraction=int(m[1]) / int(m[2]), loss=float(m[3]))
            elif e:
                epoch, i, n = int(e[1]), int(e[2]), int(e[3])
                stage.progress = dict(fraction=((epoch - 1) * n + i) / (total * n),
                                      loss=float(e[4]))
            else:
                continue
            with open(partial, 'w') as f:
                json.dump(dict(seconds=earlier + time.time() - start), f)
            progress.update(stage)
        if proc.wait() != 0:
            progress.done(stage, f'[demo] {stage.key}: FAILED (exit {proc.returncode}); '
                                 f'see {log_file}')
            raise RuntimeError(f'{stage.key} failed; see {log_file}')
    record = dict(seconds=earlier + time.time() - start, config=stage.config,
                  pretrained=pretrained, reduced=reduced)
    with open(marker, 'w') as f:
        json.dump(record, f)
    return record


def run_all(stages: List[Stage], run, jobs: int, ready) -> None:
    """Run ``stages`` on ``jobs`` worker threads; each worker takes the first stage in list
    order for which ``ready(stage)`` holds, waiting while none does. The first failure stops
    the scheduling of new stages and is raised once the running ones end."""
    pending = list(stages)
    errors: List[BaseException] = []
    cond = threading.Condition()

    def worker():
        while True:
            with cond:
                while True:
                    if errors or not pending:
                        return
                    stage = next((s for s in pending if ready(s)), None)
                    if stage is not None:
                        pending.remove(stage)
                        break
                    cond.wait()
            try:
                run(stage)
            except BaseException as e:  # re-raised by the main thread
                with cond:
                    errors.append(e)
            with cond:
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def summary(stage: Stage, work: str, record: dict) -> str:
    from backbones.analysis.results import read_run
    values = read_run(osp.join(work, stage.key)).values
    shown = '  '.join(f'{k} {v:.1f}' for k, v in values.items())
    return f'[demo] {stage.key}: done in {record["seconds"] / 60:.1f} min: {shown}'


def main(argv=None):
    args = parse_args(argv)
    work = osp.abspath(args.work_dir)
    data = osp.abspath(args.data)
    start = time.time()
    os.makedirs(work, exist_ok=True)

    if all(osp.isdir(osp.join(data, d)) for d in ('cls', 'coco', 'ade')):
        print(f'[demo] data: reusing {data}', flush=True)
    else:
        print('[demo] data: generating the shapes data set', flush=True)
        t = time.time()
        subprocess.run([sys.executable, 'tools/data/make_shapes.py', '--out', data], cwd=REPO,
                       check=True, stdout=subprocess.DEVNULL)
        print(f'[demo] data: written to {data} in {time.time() - t:.0f} s', flush=True)

    progress = Progress()
    checkpoint: List[str] = []  # set once the pre-training is done

    def train(stage):
        pretrained = checkpoint[0] if stage.pretrained else None
        rec = run_stage(stage, work, data, args.reduced, threads=1, progress=progress,
                        pretrained=pretrained)
        if stage is PRETRAIN:
            checkpoint.append(best_checkpoint(osp.join(work, PRETRAIN.key)))
        progress.done(stage, summary(stage, work, rec))

    run_all(sorted([PRETRAIN] + DOWNSTREAM, key=lambda s: RUN_ORDER.index(s.key)), train,
            args.jobs,
            ready=lambda stage: not stage.pretrained or bool(checkpoint))

    from backbones.analysis.results import (format_markdown, matrix_rows, plot_matrix, read_run,
                                            write_csv, write_markdown)
    runs = []
    for stage in [PRETRAIN] + DOWNSTREAM:
        run = read_run(osp.join(work, stage.key))
        run.name = stage.label
        runs.append(run)
    rows = matrix_rows(runs, shape=(128, 128))
    write_markdown(rows, osp.join(work, 'matrix.md'))
    write_csv(rows, osp.join(work, 'matrix.csv'))
    plot_matrix(runs, rows, osp.join(work, 'matrix.png'))
    print('\n[demo] the matrix on the shapes val splits (params and GFLOPs at 128x128):')
    print(format_markdown(rows))
    print(f'[demo] written: {work}/matrix.md, matrix.csv, matrix.png '
          f'({(time.time() - start) / 60:.1f} min in all)')


if __name__ == '__main__':
    main()
