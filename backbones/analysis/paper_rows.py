"""The rows of ``tools/analysis/paper_check.py``: every figure of the paper data file beside the
way to measure it (a preset, a roadmap step, or the config of the row)."""
import os.path as osp

from .complexity import config_complexity, preset_complexity, roadmap_gflops
from .paper import paper_row

CONFIG_DIRS = dict(classification='classification', coco='detection', ade20k='segmentation')


def paper_rows(paper: dict, config_root: str):
    """Yield ``(name, paper params or None, paper FLOPs or None, measure(flops) -> (params,
    flops))`` for every row of the paper data; ``measure`` is None when the row has no
    config under ``config_root`` (the repository's ``configs/``)."""
    for arch, row in paper['backbones'].items():
        yield (f'backbone/{arch}', row['params_m'] * 1e6, row['gflops'] * 1e9,
               lambda flops, a=arch, g=row.get('use_grn', False): _cx(
                   preset_complexity(a, use_grn=g, flops=flops)))
    for arch, row in paper['isotropic'].items():
        yield (f'isotropic/{arch}', row['params_m'] * 1e6, row['gflops'] * 1e9,
               lambda flops, a=arch: _cx(preset_complexity(a, isotropic=True, flops=flops)))
    for step, row in paper['roadmap']['steps'].items():
        yield (f'roadmap/{step}', None, row['gflops'] * 1e9,
               lambda flops, s=step: (None, roadmap_gflops(s) * 1e9 if flops else None))
    for k, row in paper['roadmap']['kernel_variants'].items():
        if int(k) == 7:  # the kernel_size step itself
            continue
        yield (f'roadmap/kernel_{k}', None, row['gflops'] * 1e9,
               lambda flops, k=int(k): (None, roadmap_gflops('kernel_size', kernel_size=k) * 1e9
                                        if flops else None))
    for section, folder in CONFIG_DIRS.items():
        for stem in paper[section]:
            if stem.startswith('_') or not isinstance(paper[section][stem], dict):
                continue
            ref = paper_row(stem, paper)
            path = osp.join(config_root, folder, f'{stem}.py')
            measure = None
            if osp.isfile(path):
                measure = (lambda flops, p=path, s=ref['flops_shape']: _cx(
                    config_complexity(p, shape=s, flops=flops)))
            yield f'{section}/{stem}', ref['params'], ref['flops'], measure


def _cx(result):
    return result.params, result.flops


def relative(ours, ref):
    """``(ours - ref) / ref``, None when either is unknown."""
    return None if ours is None or ref is None else (ours - ref) / ref


def format_cell(ours, ref, rel, scale):
    """``ours / paper (difference)`` in units of ``scale``, ``-`` when not measured."""
    if ours is None:
        return '-'
    text = f'{ours / scale:.2f} / {ref / scale:.4g}' if ref is not None else f'{ours / scale:.2f}'
    return text + (f' ({100 * rel:+.1f}%)' if rel is not None else '')


__all__ = ['CONFIG_DIRS', 'paper_rows', 'relative', 'format_cell']
