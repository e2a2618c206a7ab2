"""The one way this package puts its modules into the OpenMMLab registries a config may search.

MMDetection and MMSegmentation have child registries (scopes ``mmdet`` / ``mmseg``) of MMEngine's
root registries. A child is searched before its parent, so a module registered only in the root
registry is shadowed whenever the child already holds that name (see the layer-decay constructor),
and one registered only in a child is unknown under the other scope. Registering in all three
makes ``type='ConvNeXt'`` (or ``'CheckpointMatchHook'``, ...) mean ours in any default scope,
while ``type='mmpretrain.ConvNeXt'`` keeps meaning mmpretrain's.
"""
from typing import Callable, Optional

import mmdet.registry
import mmengine.registry
import mmseg.registry

#: Registry name -> the root registry and its mmdet and mmseg children.
_SCOPES = (mmengine.registry, mmdet.registry, mmseg.registry)
_REGISTRIES = {
    kind: tuple(getattr(scope, kind) for scope in _SCOPES)
    for kind in ('MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'TRANSFORMS', 'DATASETS', 'HOOKS',
                 'LOOPS', 'RUNNERS', 'METRICS')
}


def _register_everywhere(kind: str, name: Optional[str] = None) -> Callable[[type], type]:
    registries = _REGISTRIES[kind]

    def decorator(cls):
        for registry in registries:
            # mmdet/mmseg register their own modules lazily, on the first lookup, without
            # force: let them do it now, or that lookup would collide with our name later.
            registry.import_from_location()
            registry.register_module(name=name or cls.__name__, module=cls, force=True)
        return cls

    return decorator


def register_model(name=None):
    """Class decorator: register a model/backbone/head in the root, mmdet and mmseg registries."""
    return _register_everywhere('MODELS', name)


def register_optim_constructor(name=None):
    """Class decorator: register an optimizer-wrapper constructor in all three registries."""
    return _register_everywhere('OPTIM_WRAPPER_CONSTRUCTORS', name)


def register_transform(name=None):
    """Class decorator: register a data transform in all three registries."""
    return _register_everywhere('TRANSFORMS', name)


def register_dataset(name=None):
    """Class decorator: register a data set in all three registries."""
    return _register_everywhere('DATASETS', name)


def register_hook(name=None):
    """Class decorator: register a runner hook in all three registries."""
    return _register_everywhere('HOOKS', name)


def register_loop(name=None):
    """Class decorator: register a training/validation loop in all three registries."""
    return _register_everywhere('LOOPS', name)


def register_runner(name=None):
    """Class decorator: register a runner class in all three registries."""
    return _register_everywhere('RUNNERS', name)


def register_metric(name=None):
    """Class decorator: register an evaluation metric in all three registries."""
    return _register_everywhere('METRICS', name)
