"""Analysis helpers behind ``tools/analysis`` and the demo: the paper's figures (:mod:`.paper`),
params/FLOPs of any config or preset (:mod:`.complexity`) and results tables from MMEngine work
dirs (:mod:`.results`). The models never import this package; it imports them.
"""
from .complexity import *  # noqa: F401,F403
from .complexity import __all__ as _complexity
from .paper import *  # noqa: F401,F403
from .paper import __all__ as _paper
from .results import *  # noqa: F401,F403
from .results import __all__ as _results

__all__ = _paper + _complexity + _results
