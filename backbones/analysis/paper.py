"""The paper's figures, read from the one data file ``backbones/data/paper.json``.

Only the standard library is imported here. The model code never reads the paper: analysis and
test code hold model figures against these.
"""
import copy
import functools
import json
import os.path as osp
from typing import Dict, Optional, Tuple

#: The data file shipped with the package (setup.cfg ``package_data``).
PAPER_FILE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data', 'paper.json')

#: Top-level sections every paper file must have.
_SECTIONS = ('tolerance', 'backbones', 'backbone_flops_shape', 'isotropic', 'roadmap',
             'classification', 'coco', 'ade20k')


@functools.lru_cache(maxsize=None)
def _load(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'paper data file not found: {path}') from None
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e})') from None
    missing = [s for s in _SECTIONS if s not in data]
    if missing:
        raise KeyError(f'{path}: missing section(s) {", ".join(missing)}')
    return data


def load_paper(path: Optional[str] = None) -> dict:
    """Return the parsed paper data file (a copy; the file is read once per path).

    Args:
        path: Another file of the same layout (tests, a corrected transcription); default
            :data:`PAPER_FILE`.

    Returns:
        The JSON content: sections ``tolerance``, ``backbones``, ``isotropic``, ``roadmap``,
        ``classification``, ``coco``, ``ade20k`` (see the file's ``_about`` entries).

    Raises:
        FileNotFoundError, ValueError, KeyError: naming the file and what is wrong.
    """
    return copy.deepcopy(_load(osp.abspath(path or PAPER_FILE)))


def _rows(section: dict) -> Dict[str, dict]:
    return {k: v for k, v in section.items() if not k.startswith('_') and isinstance(v, dict)}


def paper_row(name: str, paper: Optional[dict] = None) -> Optional[dict]:
    """The paper's figures for a config, found by its file stem.

    Args:
        name: Config file name or stem, e.g. ``'upernet_convnext_t_ade20k'`` or
            ``'configs/detection/cascade_convnext_t_coco.py'``.
        paper: Parsed paper data (:func:`load_paper`); default the shipped file.

    Returns:
        ``None`` when the paper has no row for it, else a dict with ``task``
        (``'classification'``, ``'detection'`` or ``'segmentation'``), ``params`` (count),
        ``flops`` (count), ``flops_shape`` ``(H, W)``, ``approximate`` (bool) and the metrics
        the row has, in percent: ``top1``; ``box_ap``, ``mask_ap``; ``miou``, ``miou_ms``.
    """
    paper = paper if paper is not None else _load(osp.abspath(PAPER_FILE))
    stem = osp.splitext(osp.basename(name))[0]
    rows = _rows(paper['classification'])
    if stem in rows:
        preset = paper['backbones'][rows[stem]['backbone']]
        return dict(task='classification', params=round(preset['params_m'] * 1e6),
                    flops=round(preset['gflops'] * 1e9),
                    flops_shape=tuple(paper['backbone_flops_shape']),
                    approximate=False, top1=preset['top1'][rows[stem]['pretrain']])
    for section, task, metrics in (('coco', 'detection', ('box_ap', 'mask_ap')),
                                   ('ade20k', 'segmentation', ('miou', 'miou_ms'))):
        row = _rows(paper[section]).get(stem)
        if row is None:
            continue
        shape = row.get('flops_shape', paper[section].get('flops_shape'))
        out = dict(task=task, params=round(row['params_m'] * 1e6), flops=round(row['gflops'] * 1e9),
                   flops_shape=tuple(shape), approximate=bool(row.get('approximate', False)))
        out.update({m: row[m] for m in metrics})
        return out
    return None


def paper_metrics(entry) -> Dict[str, float]:
    """The paper's figures for a model-zoo entry (:class:`backbones.zoo.ZooEntry`): ``top1``
    for classifiers (the official table's), box/mask AP or mIoU for detectors and segmentors
    (this file's row of the entry's config)."""
    if entry.task in ('classification', 'pretraining'):
        return {} if entry.top1 is None else {'top1': entry.top1}
    row = paper_row(entry.config) or {}
    keys = ('box_ap', 'mask_ap') if entry.task == 'detection' else ('miou', 'miou_ms')
    return {k: row[k] for k in keys if k in row}


def _figures(section: dict, key_type=str) -> dict:
    return {key_type(k): row for k, row in _rows(section).items()}


_PAPER = _load(osp.abspath(PAPER_FILE))

#: Paper figures of the dense presets: ``(params in M, GFLOPs at 224)`` of the ImageNet-1K
#: classifier (backbone + final LayerNorm + 1000-way head; one multiply-add = one FLOP).
CONVNEXT_PAPER_COMPLEXITY: Dict[str, Tuple[float, float]] = {
    arch: (float(row['params_m']), float(row['gflops']))
    for arch, row in _figures(_PAPER['backbones']).items()
}
#: The same for the isotropic presets.
ISOTROPIC_PAPER_COMPLEXITY: Dict[str, Tuple[float, float]] = {
    arch: (float(row['params_m']), float(row['gflops']))
    for arch, row in _figures(_PAPER['isotropic']).items()
}
#: Paper GFLOPs at 224x224 per roadmap step (Table 10); ``kernel_size`` is the 7x7 row.
ROADMAP_PAPER_GFLOPS: Dict[str, float] = {
    step: float(row['gflops'])
    for step, row in _figures(_PAPER['roadmap']['steps']).items()
}
#: Paper GFLOPs of the kernel-size variants of the ``kernel_size`` step.
ROADMAP_PAPER_KERNEL_GFLOPS: Dict[int, float] = {
    k: float(row['gflops'])
    for k, row in _figures(_PAPER['roadmap']['kernel_variants'], int).items()
}

__all__ = [
    'PAPER_FILE', 'load_paper', 'paper_metrics', 'paper_row', 'CONVNEXT_PAPER_COMPLEXITY',
    'ISOTROPIC_PAPER_COMPLEXITY', 'ROADMAP_PAPER_GFLOPS', 'ROADMAP_PAPER_KERNEL_GFLOPS'
]
