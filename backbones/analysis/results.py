"""Results of MMEngine runs (classification, detection, segmentation) as one table: the
evaluation matrix of the paper, with the paper's figures beside ours where it has a row.

MMEngine writes, per run of ``tools/train.py`` / ``tools/test.py`` in ``WORK_DIR``:
``WORK_DIR/<config stem>.py`` (the full config) and ``WORK_DIR/<timestamp>/vis_data/
scalars.json``: one JSON object per line, training rows (``loss``, ``lr``, ``time``, ``iter``)
and evaluation rows (the metrics). Resumed runs add timestamps; all are read, in order.
"""
import csv
import dataclasses
import glob
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from .complexity import config_complexity
from .paper import paper_row

#: Metric columns: (column, MMEngine keys in order of preference, scale to percent).
METRICS: Tuple[Tuple[str, Tuple[str, ...], float], ...] = (
    ('top1', ('accuracy/top1', 'ema/accuracy/top1'), 1.0),
    ('box_ap', ('coco/bbox_mAP', ), 100.0),
    ('mask_ap', ('coco/segm_mAP', ), 100.0),
    ('miou', ('mIoU', ), 1.0),
)
#: The metric that picks the "best" evaluation of a run, per column present.
PRIMARY = ('top1', 'box_ap', 'miou')

#: Table columns (key, Markdown header), in order.
COLUMNS: Tuple[Tuple[str, str], ...] = (
    ('model', 'model'), ('params_m', 'params (M)'), ('gflops', 'GFLOPs'), ('top1', 'top-1'),
    ('box_ap', 'box AP'), ('mask_ap', 'mask AP'), ('miou', 'mIoU'),
    ('train_time_s', 'train time'))


@dataclasses.dataclass
class RunResult:
    """What one work dir holds.

    Args:
        name: Row name (the config stem).
        work_dir: The work dir.
        config: Path of the config MMEngine dumped there.
        metrics: The selected evaluation row (MMEngine's raw keys and values).
        values: ``top1``/``box_ap``/``mask_ap``/``miou`` in percent (paper units), for the
            metrics the run logged.
        train_time_s: Training time: sum over logged iterations of MMEngine's per-iteration
            ``time`` (data + step), evaluation excluded; ``None`` without training logs.
        iters: Last training iteration logged.
        losses: Learning curve ``[(iter, loss), ...]``.
        evals: Every evaluation row, in order.
    """

    name: str
    work_dir: str
    config: Optional[str]
    metrics: Dict[str, float]
    values: Dict[str, float]
    train_time_s: Optional[float]
    iters: int
    losses: List[Tuple[int, float]]
    evals: List[Dict[str, float]]


def find_config(work_dir: str) -> Optional[str]:
    """The config MMEngine dumped into ``work_dir`` (``<config stem>.py``); the newest when
    there are several; ``None`` when there is none."""
    candidates = sorted(glob.glob(osp.join(work_dir, '*.py')), key=osp.getmtime)
    return candidates[-1] if candidates else None


def _scalar_files(work_dir: str) -> List[str]:
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))


def _test_dumps(work_dir: str) -> List[str]:
    """The metrics of ``tools/test.py`` runs: MMEngine writes ``<ts>/<ts>.json`` (one dict)."""
    return sorted(p for p in glob.glob(osp.join(work_dir, '*', '*.json'))
                  if osp.basename(p) == osp.basename(osp.dirname(p)) + '.json')


def _read_lines(path: str) -> List[dict]:
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}, line {n}: not JSON ({e})') from None
    return rows


def _values(row: Dict[str, float]) -> Dict[str, float]:
    out = {}
    for column, keys, scale in METRICS:
        for key in keys:
            if isinstance(row.get(key), (int, float)):
                out[column] = float(row[key]) * scale
                break
    return out


def read_run(work_dir: str, select: str = 'last') -> RunResult:
    """Read the logs MMEngine wrote in ``work_dir``.

    Args:
        work_dir: A run's work dir.
        select: ``'last'`` evaluation, or ``'best'`` by the run's primary metric (top-1, box
            AP or mIoU).

    Returns:
        The :class:`RunResult`.

    Raises:
        FileNotFoundError: ``work_dir`` is missing, or has neither a training log
            (``*/vis_data/scalars.json``) nor test metrics (``<ts>/<ts>.json``).
        ValueError: A bad ``select`` or an unreadable log line (file and line named).
    """
    if select not in ('last', 'best'):
        raise ValueError(f"select must be 'last' or 'best', got {select!r}")
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir}')
    # A training run's log; else the metrics of test-only runs (tools/test.py).
    files = _scalar_files(work_dir) or _test_dumps(work_dir)
    if not files:
        raise FileNotFoundError(f'{work_dir}: no */vis_data/scalars.json nor <ts>/<ts>.json '
                                '(not an MMEngine work dir, or the run has not logged anything '
                                'yet)')
    train: Dict[int, dict] = {}  # iter -> row; a resumed run's rows replace the earlier ones
    evals = []
    for path in files:
        for row in _read_lines(path):
            if 'loss' in row and 'iter' in row:
                train[int(row['iter'])] = row
            elif _values(row):
                evals.append(row)
    losses, seconds, previous = [], 0., 0
    for it in sorted(train):
        row = train[it]
        losses.append((it, float(row['loss'])))
        if isinstance(row.get('time'), (int, float)):
            # ``time`` is the mean over the iterations since the previous log line.
            seconds += float(row['time']) * (it - previous)
        previous = it
    chosen = evals[-1] if evals else {}
    if select == 'best' and evals:
        key = next((k for k in PRIMARY if k in _values(evals[-1])), None)
        if key is not None:
            chosen = max((r for r in evals if key in _values(r)), key=lambda r: _values(r)[key])
    config = find_config(work_dir)
    name = osp.splitext(osp.basename(config))[0] if config else osp.basename(
        osp.normpath(work_dir))
    return RunResult(name=name, work_dir=work_dir, config=config, metrics=dict(chosen),
                     values=_values(chosen), train_time_s=seconds if train else None,
                     iters=max(train) if train else 0, losses=losses, evals=evals)


def _diff(ours: Optional[float], paper: Optional[float], relative: bool) -> Optional[float]:
    if ours is None or paper is None:
        return None
    return 100. * (ours - paper) / paper if relative else ours - paper


def matrix_rows(runs: Sequence[RunResult], complexity: bool = True,
                shape: Optional[Sequence[int]] = None, paper: Optional[dict] = None,
                flops: bool = True) -> List[dict]:
    """One row per run: our numbers, and the paper's with the difference where it has a row.

    Args:
        runs: From :func:`read_run`.
        complexity: Compute params (and FLOPs) from each run's dumped config.
        shape: Input ``(H, W)`` for FLOPs; ``None``: the paper's for the row, else the task's
            convention (:func:`backbones.analysis.complexity.default_shape`).
        paper: Parsed paper data; default the shipped file.
        flops: Count FLOPs too (``complexity`` must be on).

    Returns:
        Dicts with the keys of :data:`COLUMNS` (``None`` where unknown) plus, for each numeric
        column ``c`` with a paper figure, ``c_paper`` and ``c_diff`` (metrics: points; params
        and GFLOPs: percent), and ``work_dir``, ``iters``.
    """
    rows = []
    for run in runs:
        row = dict(model=run.name, params_m=None, gflops=None, train_time_s=run.train_time_s,
                   iters=run.iters, work_dir=run.work_dir)
        for column, _, _ in METRICS:
            row[column] = run.values.get(column)
        if complexity and run.config:
            cx = config_complexity(run.config, shape=shape, flops=flops)
            row['params_m'], row['gflops'] = cx.params_m, cx.gflops
        ref = paper_row(run.name, paper)
        if ref is not None:
            figures = dict(params_m=ref['params'] / 1e6, gflops=ref['flops'] / 1e9)
            figures.update({c: ref.get(c) for c, _, _ in METRICS})
            for column, value in figures.items():
                if value is None:
                    continue
                row[f'{column}_paper'] = value
                row[f'{column}_diff'] = _diff(row[column], value,
                                              column in ('params_m', 'gflops'))
        rows.append(row)
    return rows


#: Columns a multi-seed row gets spread figures for (``c_std``, ``c_min``, ``c_max``).
SPREAD_COLUMNS = tuple(c for c, _, _ in METRICS) + ('train_time_s', )
SPREAD_SUFFIXES = ('_std', '_min', '_max')


def aggregate_seeds(per_seed: Sequence[Sequence[dict]]) -> List[dict]:
    """Rows of the same runs under several seeds as one table: the mean in each column, the
    spread beside it.

    Args:
        per_seed: One list of :func:`matrix_rows` per seed, each with the same models in the
            same order.

    Returns:
        The first seed's rows (params, GFLOPs, work dir, paper columns) with each column of
        :data:`SPREAD_COLUMNS` replaced by its mean over the seeds that have it, plus ``c_std``
        (sample standard deviation; 0 for one value), ``c_min``, ``c_max`` and ``seeds``.

    Raises:
        ValueError: No seed, or seeds whose rows name different models.
    """
    if not per_seed:
        raise ValueError('aggregate_seeds: no seed given')
    models = [r['model'] for r in per_seed[0]]
    for n, rows in enumerate(per_seed[1:], 1):
        if [r['model'] for r in rows] != models:
            raise ValueError(f'aggregate_seeds: seed {n} has the rows '
                             f'{[r["model"] for r in rows]}, seed 0 has {models}')
    out = []
    for i, first in enumerate(per_seed[0]):
        row = dict(first, seeds=len(per_seed))
        for column in SPREAD_COLUMNS:
            values = [rows[i][column] for rows in per_seed if rows[i].get(column) is not None]
            if not values:
                continue
            mean = sum(values) / len(values)
            var = (sum((v - mean)**2 for v in values) / (len(values) - 1)
                   if len(values) > 1 else 0.)
            row.update({column: mean, f'{column}_std': math.sqrt(var),
                        f'{column}_min': min(values), f'{column}_max': max(values)})
            if f'{column}_paper' in row:
                row[f'{column}_diff'] = _diff(mean, row[f'{column}_paper'], False)
        out.append(row)
    return out


def _fmt(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    if column == 'train_time_s':
        return f'{value / 60:.1f} min' if value >= 60 else f'{value:.1f} s'
    if column == 'gflops':
        return f'{value:.3g}' if value < 10 else f'{value:.0f}'
    if column == 'params_m':
        return f'{value:.2f}' if value < 10 else f'{value:.1f}'
    if isinstance(value, float):
        return f'{value:.1f}' if column in ('top1', 'box_ap', 'mask_ap', 'miou') else f'{value}'
    return str(value)


def format_markdown(rows: Sequence[dict]) -> str:
    """The table as Markdown: a cell reads ``ours`` or ``ours (paper P, diff)``; rows of
    several seeds (:func:`aggregate_seeds`) read ``mean (min-max)``."""
    lines = ['| ' + ' | '.join(h for _, h in COLUMNS) + ' |',
             '|' + '|'.join('---' for _ in COLUMNS) + '|']
    for row in rows:
        cells = []
        for column, _ in COLUMNS:
            cell = _fmt(row.get(column), column)
            if f'{column}_min' in row and row.get('seeds', 1) > 1:
                cell += (f' ({_fmt(row[f"{column}_min"], column)}-'
                         f'{_fmt(row[f"{column}_max"], column)})')
            if f'{column}_paper' in row:
                diff = row[f'{column}_diff']
                unit = '%' if column in ('params_m', 'gflops') else ''
                cell += (f' (paper {_fmt(row[f"{column}_paper"], column)}'
                         + ('' if diff is None else f', {diff:+.1f}{unit}') + ')')
            cells.append(cell)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def csv_fields(rows: Sequence[dict]) -> List[str]:
    """CSV columns: the table's, each followed by its paper/diff columns when any row has
    them (and, for rows of several seeds, its ``_std``/``_min``/``_max``), then ``iters`` and
    ``work_dir`` (and ``seeds``)."""
    several = any(r.get('seeds', 1) > 1 for r in rows)
    fields = []
    for column, _ in COLUMNS:
        fields.append(column)
        for suffix in ('_paper', '_diff') + (SPREAD_SUFFIXES if several else ()):
            if any(f'{column}{suffix}' in r for r in rows):
                fields.append(f'{column}{suffix}')
    return fields + ['iters', 'work_dir'] + (['seeds'] if several else [])


def write_csv(rows: Sequence[dict], path: str) -> None:
    """Write the rows as CSV (empty cells where unknown); creates the folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fields = csv_fields(rows)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction='ignore')
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ('' if row.get(k) is None else row[k]) for k in fields})


def write_markdown(rows: Sequence[dict], path: str) -> None:
    """Write :func:`format_markdown` to ``path``; creates the folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(format_markdown(rows))


def plot_matrix(runs: Sequence[RunResult], rows: Sequence[dict], path: str) -> None:
    """A PNG: the learning curves of the runs (loss vs iteration) and the metric bars.

    Args:
        runs: The runs (for the curves: one seed's when the rows aggregate several).
        rows: Their :func:`matrix_rows` or :func:`aggregate_seeds` (for the bars, with
            min-max whiskers for several seeds), in the same order.
        path: Output PNG.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = [c for c, _, _ in METRICS if any(r.get(c) is not None for r in rows)]
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        if run.losses:
            its, losses = zip(*run.losses)
            curves.plot(its, losses, label=run.name)
    curves.set(xlabel='iteration', ylabel='training loss', title='learning curves')
    if any(run.losses for run in runs):
        curves.legend(fontsize=7)
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs = [j + i * width for j in range(len(metrics))]
        spread = None
        if row.get('seeds', 1) > 1:  # min-max whiskers around the mean
            spread = [[(row.get(c) or 0.) - row.get(f'{c}_min', row.get(c) or 0.)
                       for c in metrics],
                      [row.get(f'{c}_max', row.get(c) or 0.) - (row.get(c) or 0.)
                       for c in metrics]]
        bars.bar(xs, [row.get(c) or 0. for c in metrics], width, yerr=spread, capsize=2,
                 label=row['model'])
    headers = dict(COLUMNS)
    bars.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))],
                    [headers[c] for c in metrics])
    seeds = max((r.get('seeds', 1) for r in rows), default=1)
    bars.set(ylabel='percent', title='metrics' if seeds == 1 else
             f'metrics: mean of {seeds} seeds, min-max')
    if rows:
        bars.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


__all__ = [
    'METRICS', 'COLUMNS', 'SPREAD_COLUMNS', 'RunResult', 'find_config', 'read_run',
    'matrix_rows', 'aggregate_seeds',
    'format_markdown', 'csv_fields', 'write_csv', 'write_markdown', 'plot_matrix'
]
