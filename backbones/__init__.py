"""ConvNeXt toolkit: importing this package registers every module into the MMEngine,
MMDetection and MMSegmentation registries, applies the patches listed in
:mod:`backbones.patches` (safe checkpoint I/O, downloads through our cache, layout-proof mmcv
ops), so a config needs only
``custom_imports = dict(imports=['backbones'], allow_failed_imports=False)``.
"""
from . import patches as _patches

_patches.install()  # every change to torch/MMEngine/mmcv/mmpretrain, before mmdet is imported

from .datasets import *  # noqa: E402,F401,F403
from .engine import *  # noqa: E402,F401,F403
from .evaluation import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403
from .optim import *  # noqa: E402,F401,F403
from .version import __version__  # noqa: E402,F401
