"""Analysis helpers behind ``tools/analysis`` and the demo: the paper's figures
(:mod:`.paper`), params/FLOPs of any config (:mod:`.complexity`) and results tables from
MMEngine work dirs (:mod:`.results`), synthetic training inputs (:mod:`.synthetic`).

Only :mod:`.paper` is imported eagerly (the model presets read it while ``backbones`` is being
imported); the other names load on first use.
"""
import importlib

from .paper import PAPER_FILE, load_paper, paper_row  # noqa: F401

_LAZY = {
    'complexity': ('Complexity', 'build_model', 'config_complexity', 'count_flops',
                   'count_params', 'default_shape', 'model_complexity', 'preset_complexity',
                   'task_of'),
    'synthetic': ('synthetic_batch', ),
    'results': ('RunResult', 'read_run', 'find_config', 'matrix_rows', 'format_markdown',
                'write_csv', 'write_markdown', 'plot_matrix', 'COLUMNS'),
}


def __getattr__(name):
    for module, names in _LAZY.items():
        if name in names or name == module:
            mod = importlib.import_module(f'.{module}', __name__)
            return mod if name == module else getattr(mod, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['PAPER_FILE', 'load_paper', 'paper_row'] + [n for v in _LAZY.values() for n in v]
