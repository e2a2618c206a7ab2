"""Work-arounds for third-party packages that do not import together on our stack, applied
before anything imports them (``backbones/__init__.py`` calls :func:`install` first)."""
import importlib.util
import sys
from importlib import metadata


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
    """Apply every work-around (idempotent)."""
    disable_mmpretrain_multimodal_on_transformers5()
