"""``make demo``: the paper's evaluation matrix in miniature on the synthetic shapes data. The
stages are one table (:mod:`.stages`); :mod:`.runner` trains them and writes the matrix.

The library of tools/demo.py, imported from tools/ (which that script puts on ``sys.path``); not
part of the ``backbones`` package, which never imports it."""
from .runner import run_demo
from .stages import STAGES, Stage, stage_table

__all__ = ['STAGES', 'Stage', 'stage_table', 'run_demo']
