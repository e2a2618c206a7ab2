"""Running the demo's stages: real ``tools/train.py`` processes, two at a time, with progress,
reuse of finished stages, resumption of interrupted ones, and the matrix at the end."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from backbones.analysis.results import (aggregate_seeds, format_markdown, matrix_rows, plot_matrix,
                                        read_run, write_csv, write_markdown)
from backbones.datasets import GENERATOR_FILE
from backbones.engine import read_last_checkpoint
from .pictures import draw_detections, draw_segmentation, trivial_segmentation, val_images
from .stages import (CLS_DATA, DET_DATA, SEG_DATA, SEG_NUM_CLASSES, STAGES, TRIVIAL_SEG_LABEL,
                     Stage, seeded, stage_table)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MARKER = 'demo_stage.json'
#: Input size the matrix's params/GFLOPs are counted at (the demo's training size).
MATRIX_SHAPE = (128, 128)

# MMEngine's per-interval log lines: "Iter(train) [ 40/400] ... loss: 2.07" or
# "Epoch(train) [3][12/18] ... loss: 1.1".
ITER_LINE = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\].*?\sloss: ([0-9.]+)')
EPOCH_LINE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\].*?\sloss: ([0-9.]+)')


def data_options(stage: Stage, data: str) -> List[str]:
    """``--cfg-options`` pointing a demo config at the shapes data under ``data``."""
    splits = ('train', 'val', 'test')
    if stage.data == CLS_DATA:
        return [f'{s}_dataloader.dataset.data_root={osp.join(data, "cls")}' for s in splits]
    if stage.data == DET_DATA:
        root = osp.join(data, 'coco') + '/'
        ann = root + 'annotations/instances_val.json'
        return ([f'{s}_dataloader.dataset.data_root={root}' for s in splits]
                + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'])
    return [f'{s}_dataloader.dataset.data_root={osp.join(data, "ade")}' for s in splits]


def length_options(stage: Stage, reduced: bool) -> List[str]:
    """``--cfg-options`` for the stage's training length (epochs or iterations)."""
    n = stage.reduced if reduced else stage.length
    # Reduced runs log every iteration, so the matrix still gets their losses and times.
    logging = ['default_hooks.logger.interval=1'] if reduced else []
    # The decay (second scheduler of every demo config) ends with the run; reduced runs stop
    # inside the warm-up, where it never starts.
    schedule = [] if reduced else [f'param_scheduler.1.end={n}']
    unit = 'epochs' if stage.data == CLS_DATA else 'iters'
    return [f'train_cfg.max_{unit}={n}', f'train_cfg.val_interval={n}'] + schedule + logging


def init_options(checkpoint: str) -> List[str]:
    """``--cfg-options`` that start the backbone from the ``backbone.*`` keys of the classifier
    ``checkpoint`` (demo configs have ``init_cfg=None``, replaced whole). ``prefix`` is read by
    MMEngine's Pretrained init (MMDetection's ResNet) and by ConvNeXt; MMDetection's and
    MMSegmentation's Swin take the ``backbone.*`` keys themselves."""
    return ['model.backbone.init_cfg._delete_=True', 'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={checkpoint}',
            'model.backbone.init_cfg.prefix=backbone.']


def final_checkpoint(work_dir: str) -> str:
    """The checkpoint of the last epoch/iteration of a finished run."""
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
        self.running: Dict[str, dict] = {}
        self.last = 0.0
        self.lock = threading.Lock()

    def update(self, key: str, fraction: float, loss: Optional[float]) -> None:
        with self.lock:
            self.running[key] = dict(fraction=fraction, loss=loss)
            now = time.time()
            if now - self.last < self.interval:
                return
            self.last = now
            parts = []
            for name, p in self.running.items():
                bar = '#' * int(p['fraction'] * 20)
                loss_text = f' loss {p["loss"]:.3f}' if p['loss'] is not None else ''
                parts.append(f'{name[:28]:28s} [{bar:20s}] {p["fraction"] * 100:3.0f}%'
                             + loss_text)
            line = '   ' + '  |  '.join(parts)
            if self.tty:
                sys.stdout.write('\r' + line[:200].ljust(200))
            else:
                sys.stdout.write(line + '\n')
            sys.stdout.flush()

    def done(self, key: str, message: str) -> None:
        with self.lock:
            self.running.pop(key, None)
            if self.tty:
                sys.stdout.write('\r' + ' ' * 200 + '\r')
            print(message, flush=True)


def _parse_progress(line: str, total: int):
    """``(fraction, loss)`` of an MMEngine training log line, or None."""
    m = ITER_LINE.search(line)
    if m:
        return int(m[1]) / int(m[2]), float(m[3])
    e = EPOCH_LINE.search(line)
    if e:
        epoch, i, n = int(e[1]), int(e[2]), int(e[3])
        return ((epoch - 1) * n + i) / (total * n), float(e[4])
    return None


def run_stage(stage: Stage, work: str, data: str, reduced: bool, progress: Progress,
              init_checkpoint: Optional[str] = None, threads: int = 1) -> dict:
    """Train (or resume, or reuse) one stage; returns its marker record."""
    work_dir = osp.join(work, stage.key)
    marker = osp.join(work_dir, MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            record = json.load(f)
        progress.done(stage.key, f'[demo] {stage.key}: reusing the finished run '
                                 f'({record["seconds"] / 60:.1f} min)')
        return record
    os.makedirs(work_dir, exist_ok=True)
    cmd = [sys.executable, 'tools/train.py', stage.config, '--work-dir', work_dir]
    resuming = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    if resuming:
        cmd.append('--resume')
    options = (data_options(stage, data) + length_options(stage, reduced)
               + [f'randomness.seed={stage.seed}'])
    if init_checkpoint:
        cmd.append('--allow-new-keys')
        options += init_options(init_checkpoint)
    cmd += ['--cfg-options'] + options
    log_file = osp.join(work, 'logs', f'{stage.key}.log')
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    print(f'[demo] {stage.key}: {"resuming" if resuming else "training"} '
          f'{stage.config} (log: {log_file})', flush=True)
    partial = osp.join(work_dir, 'demo_seconds.json')
    earlier = 0.0
    if resuming and osp.isfile(partial):
        with open(partial) as f:
            earlier = json.load(f)['seconds']
    start = time.time()
    total = stage.reduced if reduced else stage.length
    with open(log_file, 'a') as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            parsed = _parse_progress(line, total)
            if parsed is None:
                continue
            with open(partial, 'w') as f:
                json.dump(dict(seconds=earlier + time.time() - start), f)
            progress.update(stage.key, *parsed)
        if proc.wait() != 0:
            progress.done(stage.key, f'[demo] {stage.key}: FAILED (exit {proc.returncode}); '
                                     f'see {log_file}')
            raise RuntimeError(f'{stage.key} failed; see {log_file}')
    record = dict(seconds=earlier + time.time() - start, config=stage.config,
                  init_checkpoint=init_checkpoint, reduced=reduced)
    with open(marker, 'w') as f:
        json.dump(record, f)
    return record


def critical_path(stages: Sequence[Stage]) -> Dict[str, float]:
    """Minutes from the start of each stage to the end of the longest chain of stages that
    wait for it (its own ``minutes`` plus its longest-waiting dependant's path)."""
    path: Dict[str, float] = {}
    for stage in reversed(list(stages)):  # dependants come after what they wait for
        after = [path[s.key] for s in stages if s.init_from == stage.key]
        path[stage.key] = stage.minutes + max(after, default=0.)
    return path


def simulated_minutes(order: Sequence[Stage], jobs: int) -> float:
    """Minutes :func:`run_all` would take for ``order`` if every stage took its ``minutes``:
    each free worker takes the first ready stage in ``order``, or waits for the next stage to
    finish when none is ready."""
    free = [0.0] * max(1, jobs)
    ends: Dict[str, float] = {}
    pending = list(order)
    while pending:
        worker = min(range(len(free)), key=free.__getitem__)
        now = free[worker]
        stage = next((s for s in pending if s.init_from is None
                      or ends.get(s.init_from, float('inf')) <= now), None)
        if stage is None:  # idle until the next stage ends (after ``now``)
            later = [t for t in ends.values() if t > now]
            if not later:
                raise ValueError(f'stages {[s.key for s in pending]} wait for stages that are '
                                 'not in the order')
            free[worker] = min(later)
            continue
        pending.remove(stage)
        ends[stage.key] = free[worker] = now + stage.minutes
    return max(free)


def plan_order(stages: Sequence[Stage], jobs: int) -> List[Stage]:
    """The order :func:`run_all` offers the stages in. Stages that others wait for come first
    (longest :func:`critical_path` first); the others start in critical-path order, improved
    by moving or swapping one stage at a time while :func:`simulated_minutes` drops. Critical
    path first alone can leave a worker idle at the end (the demo's stages: 14.6 minutes
    planned that way, 14.2 by this plan)."""
    path = critical_path(stages)
    ranked = sorted(stages, key=lambda s: -path[s.key])
    waited_for = {s.init_from for s in stages}
    head = [s for s in ranked if s.key in waited_for]
    rest = [s for s in ranked if s.key not in waited_for]
    best = simulated_minutes(head + rest, jobs)
    improved = True
    while improved:
        improved = False
        for i in range(len(rest)):
            for j in range(len(rest)):
                moved, swapped = list(rest), list(rest)
                moved.insert(j, moved.pop(i))
                swapped[i], swapped[j] = swapped[j], swapped[i]
                for trial in (moved, swapped):
                    minutes = simulated_minutes(head + trial, jobs)
                    if minutes < best - 1e-9:
                        rest, best, improved = trial, minutes, True
    return head + rest


def run_all(stages: Sequence[Stage], run: Callable[[Stage], None], jobs: int) -> None:
    """Run ``stages`` on ``jobs`` worker threads. A worker takes the first ready stage (its
    ``init_from`` stage is done) in :func:`plan_order`'s order, waiting while none is ready: a
    pre-training that others wait for starts first, and the order keeps the workers busy to
    the end. The first failure stops the scheduling of new stages and is raised once the
    running ones end."""
    pending = plan_order(stages, jobs)
    done: List[str] = []
    errors: List[BaseException] = []
    cond = threading.Condition()

    def worker():
        while True:
            with cond:
                while True:
                    if errors or not pending:
                        return
                    stage = next((s for s in pending
                                  if s.init_from is None or s.init_from in done), None)
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
                done.append(stage.key)
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _drawn_easy(layout_dir: str) -> bool:
    """Whether a layout folder holds easy scenes, per its generator file (False without one)."""
    try:
        with open(osp.join(layout_dir, GENERATOR_FILE)) as f:
            return json.load(f).get('easy') is True
    except (OSError, ValueError):
        return False


def make_data(data: str) -> None:
    """Write the demo's shapes data (the easy scenes, ``make_shapes.py --easy``) under
    ``data`` unless all three layouts of easy scenes are there."""
    layouts = [osp.join(data, d) for d in ('cls', 'coco', 'ade')]
    if all(_drawn_easy(d) for d in layouts):
        print(f'[demo] data: reusing {data}', flush=True)
        return
    if any(osp.isdir(d) for d in layouts):
        # Cluttered scenes (or data older than the generator file) would change every number.
        print(f'[demo] data: {data} does not hold the easy scenes of every layout '
              f'({GENERATOR_FILE}); writing them over it', flush=True)
    print('[demo] data: generating the shapes data set (easy scenes)', flush=True)
    start = time.time()
    subprocess.run([sys.executable, 'tools/data/make_shapes.py', '--out', data, '--easy'],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    print(f'[demo] data: written to {data} in {time.time() - start:.0f} s', flush=True)


def write_matrix(stages: Sequence[Stage], work: str, data: str, seeds: int = 1) -> str:
    """Read every stage's run (of each seed), write WORK/matrix.{md,csv,png} (with the trivial
    segmentation baseline as the last row when there are segmentation stages); return the
    Markdown table. With ``seeds`` > 1 each cell is the mean over the seeds with its spread
    (:func:`~backbones.analysis.results.aggregate_seeds`); the curves are seed 0's."""
    # The trivial baseline reads every val label map; it is the same for every seed.
    trivial = ([trivial_segmentation(data, SEG_NUM_CLASSES, TRIVIAL_SEG_LABEL)]
               if any(stage.data == SEG_DATA for stage in stages) else [])
    per_seed, curves = [], []
    for seed in range(seeds):
        runs = []
        for stage in seeded(stages, seed):
            run = read_run(osp.join(work, stage.key))
            run.name = stage.label
            runs.append(run)
        runs += trivial
        # Params and FLOPs are the same for every seed: counted once.
        per_seed.append(matrix_rows(runs, complexity=seed == 0, shape=MATRIX_SHAPE))
        curves = curves or runs
    rows = per_seed[0] if seeds == 1 else aggregate_seeds(per_seed)
    write_markdown(rows, osp.join(work, 'matrix.md'))
    write_csv(rows, osp.join(work, 'matrix.csv'))
    plot_matrix(curves, rows, osp.join(work, 'matrix.png'))
    return format_markdown(rows)


def draw_pictures(stages: Sequence[Stage], work: str, data: str) -> List[str]:
    """WORK/pictures/<stage>.png: each detection and segmentation model's predictions on four
    validation images, drawn by MMDetection's / MMSegmentation's visualizers."""
    written = []
    for stage in stages:
        if stage.data == CLS_DATA:
            continue
        draw = draw_detections if stage.data == DET_DATA else draw_segmentation
        work_dir = osp.join(work, stage.key)
        written.append(draw(stage.config, final_checkpoint(work_dir),
                            val_images(data, stage.data),
                            osp.join(work, 'pictures', f'{stage.key}.png')))
    return written


def run_demo(work: str, data: str, jobs: int = 2, reduced: bool = False,
             stages: Sequence[Stage] = STAGES, seeds: int = 1) -> None:
    """The whole demo: data, every stage (``jobs`` at a time, one thread each), the matrix.

    Args:
        work: Work dir of the demo (one sub-dir per stage, ``logs/``, the matrix files).
        data: Root of the shapes data (written when missing).
        jobs: Training runs at once.
        reduced: A few iterations per stage (the same code path, in minutes).
        stages: The stages to run (default: :data:`STAGES`).
        seeds: Replicates of every stage, seeds ``0 .. seeds-1`` (:func:`seeded`: seed 0 in
            ``WORK/<key>``, the others in ``WORK/seed<s>/<key>``); the matrix gives each cell's
            mean and spread when there are several.
    """
    if seeds < 1:
        raise ValueError(f'--seeds must be at least 1, got {seeds}')
    base = list(stage_table(tuple(stages)).values())
    table = {s.key: s for seed in range(seeds) for s in seeded(base, seed)}
    work, data = osp.abspath(work), osp.abspath(data)
    start = time.time()
    os.makedirs(work, exist_ok=True)
    make_data(data)
    progress = Progress()

    def train(stage: Stage) -> None:
        init = None
        if stage.init_from is not None:
            init = final_checkpoint(osp.join(work, table[stage.init_from].key))
        record = run_stage(stage, work, data, reduced, progress, init)
        values = read_run(osp.join(work, stage.key)).values
        shown = '  '.join(f'{k} {v:.1f}' for k, v in values.items())
        progress.done(stage.key, f'[demo] {stage.key}: done in {record["seconds"] / 60:.1f} '
                                 f'min: {shown}')

    run_all(list(table.values()), train, jobs)
    table_md = write_matrix(base, work, data, seeds)
    pictures = draw_pictures(base, work, data)
    spread = '' if seeds == 1 else f'; mean (min-max) of {seeds} seeds'
    print(f'\n[demo] the matrix on the shapes val splits (params and GFLOPs at '
          f'{MATRIX_SHAPE[0]}x{MATRIX_SHAPE[1]}{spread}):')
    print(table_md)
    print(f'[demo] written: {work}/matrix.md, matrix.csv, matrix.png and {len(pictures)} '
          f'pictures of predictions in {work}/pictures ({(time.time() - start) / 60:.1f} min in '
          'all)')
