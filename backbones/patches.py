"""Every change that ``import backbones`` makes to torch, MMEngine, mmcv and mmpretrain, in one
place (:func:`install`, called by ``backbones/__init__.py`` before anything else):

* mmpretrain's multi-modal models are switched off under transformers >= 5, so that
  ``import mmdet`` works at all (:func:`disable_mmpretrain_multimodal_on_transformers5`);
* MMEngine's checkpoint loading is weights-only with an allow-list, its saving atomic, and its
  message hub reads plain log history (:func:`backbones.checkpoint.io.install`): checkpoints
  from strangers never run code, and a kill mid-save leaves the last checkpoint intact;
* URLs, ``zoo://`` and ``torchvision://`` checkpoints are fetched through our cache and loaded
  the same safe way (:func:`backbones.checkpoint.hub.install`);
* the mmcv ops that index feature-map memory as contiguous NCHW get contiguous inputs
  (:func:`backbones.ops.install_layout_guards`): a channels-last map was once read scrambled.

Each step is idempotent.
"""
import importlib.util
import sys
from importlib import metadata

# torch and MMEngine only: nothing here imports mmdet or mmpretrain before the switch below.
from backbones.checkpoint import hub, io
from backbones.ops import install_layout_guards


def _major_version(package: str):
    try:
        return int(metadata.version(package).split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def disable_mmpretrain_multimodal_on_transformers5() -> bool:
    """Keep ``import mmdet`` working when mmpretrain and transformers >= 5 are installed.

    mmdet 3.3 imports mmpretrain, which imports its multi-modal models (BLIP, ...) whenever
    ``transformers >= 4.28`` is installed. Those modules subclass names that transformers 5
    removed (``apply_chunking_to_forward`` ...): their ``except`` branch sets the base class to
    None and the class statement fails (``TypeError: NoneType takes no arguments``). We set
    mmpretrain's own switch to False, so it registers its placeholders instead, which raise a
    clear ImportError only when a multi-modal model is built. Nothing else of mmpretrain changes.

    Returns:
        Whether the switch was turned off.
    """
    if (_major_version('transformers') or 0) < 5 or importlib.util.find_spec('mmpretrain') is None:
        return False
    if 'mmpretrain.models' in sys.modules:  # too late to matter; it imported already
        return False
    from mmpretrain.utils import dependency
    dependency.WITH_MULTIMODAL = False
    return True


def install() -> None:
    """Apply every patch listed in the module docstring, in that order (idempotent)."""
    disable_mmpretrain_multimodal_on_transformers5()  # before anything imports mmdet
    io.install()
    hub.install()
    install_layout_guards()
