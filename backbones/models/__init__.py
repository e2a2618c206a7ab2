from .base import Backbone, drop_path_rates, normalize_indices, resolve_arch
from .classifier import ClsDataPreprocessor, ImageClassifier, LinearClsHead
from .convert import (OUTPUT_NORM, SplitCheckpoint, convert_and_detect, convert_checkpoint,
                      convert_classifier_checkpoint, convert_to_mmpretrain, convert_to_official,
                      detect_format, split_checkpoint, unwrap_state_dict)
from .convnext import ConvNeXt, convnext_layer_id
from .isotropic import ConvNeXtIsotropic, isotropic_layer_id
from .layers import GRN, ConvNeXtBlock, LayerNorm2d, set_fast_inference, set_fast_training
from .loading import init_weights_from_cfg, load_pretrained
from .presets import CONVNEXT_ARCHS, ISOTROPIC_ARCHS
from .roadmap import ROADMAP_STEPS, ModernizedResNet

__all__ = [
    'Backbone', 'drop_path_rates', 'normalize_indices', 'resolve_arch', 'ImageClassifier',
    'LinearClsHead', 'ClsDataPreprocessor', 'convert_classifier_checkpoint', 'ConvNeXt',
    'ConvNeXtIsotropic', 'ConvNeXtBlock', 'LayerNorm2d', 'GRN', 'CONVNEXT_ARCHS',
    'ISOTROPIC_ARCHS', 'OUTPUT_NORM', 'SplitCheckpoint', 'split_checkpoint', 'convert_checkpoint',
    'convert_and_detect', 'convert_to_official', 'convert_to_mmpretrain', 'detect_format',
    'load_pretrained', 'init_weights_from_cfg', 'unwrap_state_dict', 'convnext_layer_id',
    'isotropic_layer_id', 'ModernizedResNet', 'ROADMAP_STEPS', 'set_fast_inference',
    'set_fast_training'
]
