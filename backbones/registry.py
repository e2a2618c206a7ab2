"""One place that puts our modules into every OpenMMLab registry a config may search.

MMDetection and MMSegmentation have child registries (scopes ``mmdet`` / ``mmseg``) of MMEngine's
root registries. A child is searched before its parent, so a module registered only in the root
registry is shadowed whenever the child already holds that name (see the layer-decay constructor).
Registering in all three makes ``type='ConvNeXt'`` mean ours in any default scope, while
``type='mmpretrain.ConvNeXt'`` keeps meaning mmpretrain's.
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMDET_CONSTRUCTORS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT_CONSTRUCTORS
from mmengine.registry import TRANSFORMS as ROOT_TRANSFORMS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_CONSTRUCTORS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS

_MODEL_REGISTRIES = (ROOT_MODELS, MMDET_MODELS, MMSEG_MODELS)
_CONSTRUCTOR_REGISTRIES = (ROOT_CONSTRUCTORS, MMDET_CONSTRUCTORS, MMSEG_CONSTRUCTORS)
_TRANSFORM_REGISTRIES = (ROOT_TRANSFORMS, MMDET_TRANSFORMS, MMSEG_TRANSFORMS)


def _register_everywhere(registries, name=None):

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
    return _register_everywhere(_MODEL_REGISTRIES, name)


def register_optim_constructor(name=None):
    """Class decorator: register an optimizer-wrapper constructor in all three registries."""
    return _register_everywhere(_CONSTRUCTOR_REGISTRIES, name)


def register_transform(name=None):
    """Class decorator: register a data transform in the root, mmdet and mmseg registries."""
    return _register_everywhere(_TRANSFORM_REGISTRIES, name)
