"""Does a checkpoint fit a model? One check, by name and shape, with one grouped report
(missing / unexpected / of another shape, by module; a wrong backbone size or number of
classes named; what the checkpoint's ``meta`` says), shared by :func:`backbones.load_pretrained`
and the engine's ``CheckpointMatchHook`` (``load_from``, ``--resume``, ``tools/test.py``)."""
import ast
import collections
import dataclasses
import re
from typing import Dict, List, Optional, Tuple

import torch

from .presets import CONVNEXT_ARCHS


def _strip_module(name: str) -> str:
    while name.startswith('module.'):
        name = name[len('module.'):]
    return name


def _apply_load_pre_hooks(model, state: dict) -> bool:
    """Let the model's own load-state-dict pre-hooks rename ``state`` (a private copy) as
    ``load_state_dict`` will, e.g. a classifier converting a foreign format. Returns False
    when a hook fails: the real load then reports the problem itself."""
    try:
        for name, module in model.named_modules():
            for hook in module._load_state_dict_pre_hooks.values():
                hook(state, f'{name}.' if name else '', {}, False, [], [], [])
    except Exception:  # noqa: BLE001  (any failure is the real load's to report)
        return False
    return True


@dataclasses.dataclass
class CheckpointFit:
    """How a checkpoint's tensors fit a model, by name and shape (names without ``module.``).

    Attributes:
        model_name: The model's class name.
        model_shapes: Shape of every tensor the model persists.
        file_shapes: Shape of every tensor of the checkpoint (after conversion and the
            model's load pre-hooks), less the model's non-persistent buffers.
        missing: The model's tensors the checkpoint lacks.
        unexpected: The checkpoint's tensors the model lacks.
        wrong: The names present in both with different shapes.
    """

    model_name: str
    model_shapes: Dict[str, Tuple[int, ...]]
    file_shapes: Dict[str, Tuple[int, ...]]
    missing: List[str]
    unexpected: List[str]
    wrong: List[str]

    @property
    def matched(self) -> int:
        """How many of the model's tensors the checkpoint fills."""
        return len(self.model_shapes) - len(self.missing) - len(self.wrong)

    @property
    def exact(self) -> bool:
        """Nothing missing, unexpected or of another shape."""
        return not (self.missing or self.unexpected or self.wrong)


def bare_model(model):
    while hasattr(model, 'module'):  # DDP, test-time augmentation
        model = model.module
    return model


def checkpoint_fit(model, state: dict) -> Optional[CheckpointFit]:
    """Compare a (converted) state dict with ``model`` as ``load_state_dict`` will see it.

    Args:
        model: The model (wrappers with ``.module`` are looked through).
        state: The state dict to load (not changed: the pre-hooks run on a copy).

    Returns:
        The fit, or None when the model has no tensors or one of its load pre-hooks fails
        (the real load then reports that itself).
    """
    model = bare_model(model)
    # Wrappers (DDP, test-time augmentation) prefix names with "module.": compare without.
    state = {_strip_module(k): v for k, v in state.items()}
    own = {_strip_module(k): tuple(v.shape) for k, v in model.state_dict().items()}
    if not own or not _apply_load_pre_hooks(model, state):
        return None
    transient = {f'{name}.{b}' if name else b for name, m in model.named_modules()
                 for b in m._non_persistent_buffers_set}  # not state: never loaded
    file = {k: tuple(v.shape) for k, v in state.items() if torch.is_tensor(v)
            and k not in transient}
    # Tensors a model persists but never uses may be absent (ImageClassifier says which).
    optional = getattr(model, 'optional_checkpoint_keys', None)
    return CheckpointFit(
        model_name=type(model).__name__, model_shapes=own, file_shapes=file,
        missing=[k for k in own if k not in file
                 and not (optional and re.match(optional, k))],
        unexpected=[k for k in file if k not in own],
        wrong=[k for k in own if k in file and file[k] != own[k]])


def _by_module(keys: List[str]) -> str:
    """``'3 (roi_head 2, backbone 1), e.g. a, b, c'``: counts per top-level module."""
    groups = collections.Counter(k.split('.', 1)[0] for k in keys)
    counts = ', '.join(f'{g} {n}' for g, n in groups.items())
    shown = ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')
    return f'{len(keys)} ({counts}), e.g. {shown}'


_BLOCK = re.compile(r'^backbone\.(?:stages|layers)\.(\d+)\.(?:blocks\.)?(\d+)\.')  # ConvNeXt, Swin
_RESNET_BLOCK = re.compile(r'^backbone\.layer(\d+)\.(\d+)\.')


def _backbone_layout(shapes: Dict[str, Tuple[int, ...]]) -> Optional[str]:
    """``'depths [3, 3, 9, 3] dims [96, ...] (arch 'tiny')'`` read off the names and shapes."""
    depths: Dict[int, int] = {}
    dims: Dict[int, int] = {}
    for key, shape in shapes.items():
        m = _BLOCK.match(key)
        stage = int(m[1]) if m else None
        if m is None and (m := _RESNET_BLOCK.match(key)):
            stage = int(m[1]) - 1
        if m is None:
            continue
        block = int(m[2])
        depths[stage] = max(depths.get(stage, 0), block + 1)
        # A block's first norm is as wide as its stage (ConvNeXt norm, Swin norm1).
        if block == 0 and len(shape) == 1 and re.search(r'\.norm1?\.weight$', key):
            dims[stage] = shape[0]
    if not depths or min(depths) < 0:
        return None
    depth_list = [depths.get(i, 0) for i in range(max(depths) + 1)]
    text = f'depths {depth_list}'
    if len(dims) == len(depth_list):
        dim_list = [dims[i] for i in range(len(depth_list))]
        text += f' dims {dim_list}'
        if any(k.endswith('.dwconv.weight') for k in shapes):  # ConvNeXt: name the preset
            arch = [name for name, a in CONVNEXT_ARCHS.items()
                    if list(a['depths']) == depth_list and list(a['dims']) == dim_list]
            text += f" (arch '{arch[0]}')" if arch else ''
    return text


#: Classifier layers whose output size is the number of classes (plus 1 for softmax's
#: background class in MMDetection's box heads).
_CLASSIFIER = re.compile(r'(^|\.)(fc_cls|conv_cls|conv_seg|conv_logits|retina_cls|fc|head)'
                         r'\.(weight|bias)$')


def _class_counts(model, key: str, file_shape: tuple, model_shape: tuple) -> Optional[tuple]:
    """``(classes in the checkpoint, classes in the model)`` of a classifier layer whose
    output size differs, or None when ``key`` is no such layer."""
    if not _CLASSIFIER.search(key) or not file_shape or len(file_shape) != len(model_shape) \
            or file_shape[1:] != model_shape[1:]:
        return None
    path = key.split('.')[:-2]  # the module that holds the layer (bbox_head.0, decode_head)
    for n in (len(path), len(path) - 1):
        try:
            owner = model.get_submodule('.'.join(path[:n])) if n >= 0 else None
        except AttributeError:
            continue
        num = getattr(owner, 'num_classes', None)
        if isinstance(num, int) and not isinstance(num, bool) and model_shape[0] - num in (0, 1):
            return file_shape[0] - (model_shape[0] - num), num
    return None


def _meta_summary(checkpoint) -> Optional[str]:
    """What the checkpoint's ``meta`` says about its model, read without running anything:
    the config text (mmcv 1.x ``meta.config``, MMEngine ``meta.cfg``) is parsed with
    :mod:`ast`, never executed; the class names are counted."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    parts = []
    text = meta.get('config', meta.get('cfg'))
    model = None
    if isinstance(text, str) and len(text) < 1 << 20:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        for node in getattr(tree, 'body', ()):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                    isinstance(t, ast.Name) and t.id == 'model' for t in node.targets):
                model = node.value
    if model is not None:
        def literal(node):
            try:
                value = ast.literal_eval(node)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                return None
            return list(value) if isinstance(value, tuple) else value

        def keywords(call):
            return {k.arg: literal(k.value) for k in call.keywords if k.arg}

        top = {k.arg: k.value for k in model.keywords if k.arg}
        if isinstance(literal(top.get('type')), str):
            parts.append(f"model {literal(top['type'])}")
        if isinstance(top.get('backbone'), ast.Call):
            backbone = keywords(top['backbone'])
            words = [str(backbone['type'])] if isinstance(backbone.get('type'), str) else []
            words += [f'{k} {backbone[k]!r}' for k in ('arch', 'depth', 'depths', 'dims',
                                                       'embed_dims') if backbone.get(k)]
            if words:
                parts.append('backbone ' + ' '.join(words))
        classes = sorted({v for n in ast.walk(model) if isinstance(n, ast.Call)
                          for k, v in keywords(n).items() if k == 'num_classes'
                          and isinstance(v, int) and not isinstance(v, bool)})
        if classes:
            parts.append('num_classes ' + '/'.join(map(str, classes)))
    names = meta.get('CLASSES')
    if names is None and isinstance(meta.get('dataset_meta'), dict):
        names = meta['dataset_meta'].get('classes')
    if isinstance(names, (list, tuple)) and names:
        parts.append(f'{len(names)} class names')
    if not parts:
        return None
    return f"the checkpoint's meta says: {', '.join(parts)}"


def describe_fit(fit: CheckpointFit,
                 model,
                 checkpoint,
                 source: str,
                 verdict: str,
                 config: Optional[str] = None,
                 advice: str = '') -> str:
    """The grouped report of a checkpoint that does not fit, for errors and warnings alike.

    Args:
        fit: What :func:`checkpoint_fit` found.
        model: The model (for the class counts of classifier layers).
        checkpoint: The loaded checkpoint (for what its ``meta`` says).
        source: The checkpoint's file name.
        verdict: E.g. ``'was made for another model'``.
        config: The config's file name, if known.
        advice: The closing sentence.
    """
    model = bare_model(model)
    where = f' (config {config!r})' if config else ''
    lines = [f'checkpoint {source!r} {verdict}: {fit.matched} of the {len(fit.model_shapes)} '
             f'tensors of {fit.model_name} match it by name and shape{where}; '
             f'{len(fit.missing)} missing, {len(fit.unexpected)} unexpected, '
             f'{len(fit.wrong)} of another shape.']
    if fit.missing:
        lines.append(f'missing: {_by_module(fit.missing)}')
    if fit.unexpected:
        lines.append(f'unexpected: {_by_module(fit.unexpected)}')
    if fit.wrong:
        groups = collections.Counter(k.split('.', 1)[0] for k in fit.wrong)
        shown = '; '.join(f'{k}: {fit.file_shapes[k]} in the file, {fit.model_shapes[k]} in '
                          'the model' for k in fit.wrong[:5])
        lines.append(f'of another shape: {len(fit.wrong)} '
                     f'({", ".join(f"{g} {n}" for g, n in groups.items())}): {shown}'
                     + ('; ...' if len(fit.wrong) > 5 else ''))
    theirs, ours = _backbone_layout(fit.file_shapes), _backbone_layout(fit.model_shapes)
    if theirs and ours and theirs != ours:
        lines.append(f"wrong size: the checkpoint's backbone has {theirs}, the config's has "
                     f'{ours}.')
    heads = collections.defaultdict(list)  # (theirs, ours) -> layers
    for key in fit.wrong:
        counts = _class_counts(model, key, fit.file_shapes[key], fit.model_shapes[key])
        layer = key.rsplit('.', 1)[0]
        if counts and layer not in heads[counts]:
            heads[counts].append(layer)
    for (theirs, ours), layers in heads.items():
        shown = ', '.join(layers[:3]) + (f', ... ({len(layers)} layers)' if len(layers) > 3
                                         else '')
        lines.append(f'wrong head: {theirs} classes in the checkpoint, {ours} in the config '
                     f'({shown}).')
    summary = _meta_summary(checkpoint)
    if summary:
        lines.append(summary + '.')
    if advice:
        lines.append(advice)
    return '\n  '.join(lines)
