from .classifier import (ClsDataPreprocessor, ImageClassifier, LinearClsHead,
                         convert_classifier_checkpoint)
from .convert import (convert_and_detect, convert_checkpoint, convert_to_mmpretrain,
                      convert_to_official, detect_format, load_pretrained, unwrap_state_dict)
from .convnext import ConvNeXt, convnext_layer_id
from .isotropic import ConvNeXtIsotropic, isotropic_layer_id
from .layers import GRN, ConvNeXtBlock, LayerNorm2d, set_fast_inference
from .presets import (CONVNEXT_ARCHS, CONVNEXT_PAPER_COMPLEXITY, ISOTROPIC_ARCHS,
                      ISOTROPIC_PAPER_COMPLEXITY)
from .roadmap import ROADMAP_STEPS, ModernizedResNet

__all__ = [
    'ImageClassifier', 'LinearClsHead', 'ClsDataPreprocessor', 'convert_classifier_checkpoint',
    'ConvNeXt', 'ConvNeXtIsotropic', 'ConvNeXtBlock', 'LayerNorm2d', 'GRN', 'CONVNEXT_ARCHS',
    'CONVNEXT_PAPER_COMPLEXITY', 'ISOTROPIC_ARCHS', 'ISOTROPIC_PAPER_COMPLEXITY',
    'convert_checkpoint', 'convert_and_detect', 'convert_to_official', 'convert_to_mmpretrain',
    'detect_format', 'load_pretrained', 'unwrap_state_dict', 'convnext_layer_id',
    'isotropic_layer_id', 'ModernizedResNet', 'ROADMAP_STEPS', 'set_fast_inference'
]
