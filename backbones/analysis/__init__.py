"""Analysis helpers behind ``tools/analysis`` and the demo: the paper's figures (:mod:`.paper`),
params/FLOPs of any config or preset (:mod:`.complexity`), results tables from MMEngine work
dirs (:mod:`.results`) and synthetic training inputs (:mod:`.synthetic`). The models never
import this package; it imports them.
"""
from .complexity import *  # noqa: F401,F403
from .complexity import __all__ as _complexity
from .paper import *  # noqa: F401,F403
from .paper import __all__ as _paper
from .results import *  # noqa: F401,F403
from .results import __all__ as _results
from .synthetic import synthetic_batch

__all__ = _paper + _complexity + _results + ['synthetic_batch']
