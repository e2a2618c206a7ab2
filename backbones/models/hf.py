"""Names of Hugging Face transformers' ConvNeXt, ConvNeXt V2 and UperNet weights, and ours.

Pure key mapping, used by :mod:`.convert` (format ``'hf'``). The names below are those of the
state dicts transformers 5.x writes (read off the models themselves, see
``tests/test_checkpoint_formats.py``):

* backbone, the same for V1 and V2 and for ``ConvNext[V2]Model`` / ``ConvNext[V2]Backbone``
  (no prefix), ``ConvNext[V2]ForImageClassification`` (``convnext.`` / ``convnextv2.``) and
  ``UperNetForSemanticSegmentation`` (``backbone.``, stripped before we see the keys):
  ``embeddings.patch_embeddings`` and ``embeddings.layernorm`` (the stem),
  ``encoder.stages.i.downsampling_layer.{0,1}`` (stages 1-3),
  ``encoder.stages.i.layers.j.{dwconv,layernorm,pwconv1,pwconv2,layer_scale_parameter}``, V2's
  ``...grn.{weight,bias}`` of shape ``(1, 1, 1, C)``, and a backbone's output norms
  ``hidden_states_norms.stage{1..4}``;
* classifier: ``layernorm`` (the post-pooling norm, under the model prefix) and ``classifier``;
* UperNet heads: ``decode_head.{psp_modules.i.1,bottleneck,lateral_convs.i,fpn_convs.i,
  fpn_bottleneck}`` and ``auxiliary_head.{convs.i,conv_cat}``, each a ``conv`` +
  ``batch_norm`` pair, and each head's ``classifier``; MMSegmentation's ``UPerHead`` and
  ``FCNHead`` use the same module names with ``bn`` and ``conv_seg``.
"""
import re
from typing import Iterable, Optional, Tuple

#: A block key of a transformers ConvNeXt (V1 or V2) backbone, with or without the model prefix.
HF_BLOCK = re.compile(r'^(?:convnext(?:v2)?\.)?encoder\.stages\.\d+\.layers\.\d+\.')
_MODEL_PREFIX = re.compile(r'^convnext(?:v2)?\.')
#: Names inside a block: transformers' -> ours (dwconv, pwconv1 and pwconv2 are the same).
_BLOCK_NAMES = (('layernorm.', 'norm.'), ('layer_scale_parameter', 'gamma'),
                ('grn.weight', 'grn.gamma'), ('grn.bias', 'grn.beta'))
_HEADS = ('decode_head.', 'auxiliary_head.')


def is_hf_backbone(keys: Iterable[str]) -> bool:
    """Whether prefix-free ``keys`` are those of a transformers ConvNeXt / ConvNeXt V2."""
    return any(HF_BLOCK.match(k) for k in keys)


def hf_backbone_key(key: str) -> Tuple[Optional[str], str]:
    """Where a key of a transformers ConvNeXt goes, as ``(part, our name)``.

    Args:
        key: A key without the ``backbone.`` prefix of a whole model.

    Returns:
        Part ``'backbone'`` (with our backbone's name), ``'final_norm'`` (the classifier's
        post-pooling ``layernorm``) or ``'head'`` (``classifier``), with the parameter name
        inside that part. Keys we do not know stay ``'backbone'`` and unchanged (reported as
        unexpected on load).
    """
    if key.startswith('classifier.'):
        return 'head', key[len('classifier.'):]
    key = _MODEL_PREFIX.sub('', key)
    if key.startswith('layernorm.'):
        return 'final_norm', key[len('layernorm.'):]
    if key.startswith('embeddings.patch_embeddings.'):
        return 'backbone', 'downsample_layers.0.0.' + key[len('embeddings.patch_embeddings.'):]
    if key.startswith('embeddings.layernorm.'):
        return 'backbone', 'downsample_layers.0.1.' + key[len('embeddings.layernorm.'):]
    match = re.match(r'encoder\.stages\.(\d+)\.downsampling_layer\.(.*)', key)
    if match:
        return 'backbone', f'downsample_layers.{match[1]}.{match[2]}'
    match = re.match(r'encoder\.stages\.(\d+)\.layers\.(\d+)\.(.*)', key)
    if match:
        rest = match[3]
        for old, new in _BLOCK_NAMES:
            if rest.startswith(old):
                rest = new + rest[len(old):]
        return 'backbone', f'stages.{match[1]}.{match[2]}.{rest}'
    match = re.match(r'hidden_states_norms\.stage(\d+)\.(.*)', key)
    if match:  # transformers counts the stem as stage 0
        return 'backbone', f'norm{int(match[1]) - 1}.{match[2]}'
    return 'backbone', key


def is_hf_heads(keys: Iterable[str]) -> bool:
    """Whether a whole segmentor's ``keys`` hold transformers' UperNet / FCN head names
    (MMSegmentation's heads never name a module ``batch_norm``)."""
    return any(k.startswith(_HEADS) and '.batch_norm.' in k for k in keys)


def hf_head_key(key: str) -> str:
    """MMSegmentation's name of a transformers UperNet head key (``decode_head.*`` or
    ``auxiliary_head.*``); other keys are returned unchanged."""
    head = next((h for h in _HEADS if key.startswith(h)), None)
    if head is None:
        return key
    rest = key[len(head):]
    if rest.startswith('classifier.'):
        rest = 'conv_seg.' + rest[len('classifier.'):]
    return head + rest.replace('.batch_norm.', '.bn.')
