"""ConvNeXt toolkit: importing this package registers every module into the MMEngine,
MMDetection and MMSegmentation registries, installs safe checkpoint I/O (local files, and
downloads through the cache of :mod:`backbones.checkpoint.hub`) and makes the mmcv ops that read
raw feature-map memory take any layout (:mod:`backbones.ops`), so a config needs only
``custom_imports = dict(imports=['backbones'], allow_failed_imports=False)``.
"""
from . import compat as _compat

_compat.install()  # before anything imports mmdet (and through it mmpretrain)

from .checkpoint import hub as _hub  # noqa: E402
from .checkpoint import io as _checkpoint_io  # noqa: E402
from .ops import install_layout_guards as _install_layout_guards  # noqa: E402

_checkpoint_io.install()
_hub.install()  # URLs, zoo:// and torchvision:// are fetched into the cache, loaded safely
_install_layout_guards()

from .datasets import *  # noqa: E402,F401,F403
from .engine import *  # noqa: E402,F401,F403
from .evaluation import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403
from .optim import *  # noqa: E402,F401,F403
from .recipe import *  # noqa: E402,F401,F403
from .version import __version__  # noqa: E402,F401
