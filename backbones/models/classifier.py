"""ImageNet-style classifier for the toolkit's backbones, trained with timm's recipe parts.

``ImageClassifier`` = backbone -> global average pooling -> :class:`LinearClsHead` (the
post-pooling LayerNorm and the linear layer of the official classifier). Its data
preprocessor applies timm's Mixup/CutMix to training batches and the loss follows the targets:
timm's soft-target cross-entropy for mixed batches, label smoothing or plain cross-entropy
otherwise.

Checkpoint layout (ours): ``backbone.*`` (all dense-backbone keys, output norms included, so the
file loads into any detection/segmentation config with no missing key), ``head.norm.*``,
``head.fc.*``. Official, timm and mmpretrain classifier checkpoints are converted on load
(:func:`convert_classifier_checkpoint`), so ``load_from`` and ``tools/test.py`` take them as
they are.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseDataPreprocessor, BaseModel, BaseModule
from mmengine.registry import MODELS
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from backbones.registry import register_model
from .base import Backbone
from .convert import OUTPUT_NORM, convert_classifier_checkpoint


@register_model()
class LinearClsHead(BaseModule):
    """Classification head on pooled features: optional LayerNorm, then a linear layer.

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the pooled feature.
        pre_norm: LayerNorm (eps 1e-6) before the linear layer, as in ConvNeXt; off for the
            BatchNorm steps of the roadmap.
        init_scale: Multiplies the initial linear weights and bias (0.001 when fine-tuning
            from IN-22K, the paper's Appendix A.1).
        label_smoothing: Label smoothing for hard targets (batches without Mixup).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 pre_norm: bool = True,
                 init_scale: float = 1.0,
                 label_smoothing: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.init_scale = init_scale
        self.norm = nn.LayerNorm(in_channels, eps=1e-6) if pre_norm else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        self.hard_loss = (LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0
                          else nn.CrossEntropyLoss())
        self.soft_loss = SoftTargetCrossEntropy()

    def init_weights(self) -> None:
        """Truncated-normal weights (std 0.02), zero bias, both times ``init_scale``."""
        super().init_weights()
        if not self.init_cfg:
            nn.init.trunc_normal_(self.fc.weight, std=.02)
            nn.init.zeros_(self.fc.bias)
            with torch.no_grad():
                self.fc.weight.mul_(self.init_scale)
                self.fc.bias.mul_(self.init_scale)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of pooled features ``(N, in_channels)``."""
        return self.fc(self.norm(pooled))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against class indices ``(N,)`` or soft targets ``(N, num_classes)``."""
        if targets.dim() == 2:
            return self.soft_loss(logits, targets)
        return self.hard_loss(logits, targets)


@register_model()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Moves a collated batch to the device and applies timm's Mixup/CutMix when training.

    The dataset's timm transform already returns normalised tensors, so nothing else is done.
    A batch is ``dict(inputs=(N, 3, H, W) float, data_samples=(N,) long)``; after Mixup the
    ``data_samples`` are soft targets ``(N, num_classes)`` with label smoothing folded in.

    Args:
        num_classes: Number of classes (for the soft targets).
        mixup: ``None`` for no mixing, or timm :class:`~timm.data.Mixup` arguments, e.g.
            ``dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)``.
    """

    def __init__(self, num_classes: Optional[int] = None, mixup: Optional[dict] = None) -> None:
        super().__init__()
        self.mixup = None
        if mixup:
            if not num_classes:
                raise ValueError('ClsDataPreprocessor: mixup needs num_classes')
            self.mixup = Mixup(num_classes=num_classes, **mixup)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        if not isinstance(data, dict) or 'inputs' not in data:
            raise TypeError('ClsDataPreprocessor expects a collated dict with "inputs" and '
                            '"data_samples" (use collate_fn=dict(type="default_collate"))')
        inputs, labels = data['inputs'], data.get('data_samples')
        if training and self.mixup is not None:
            if inputs.shape[0] % 2:
                raise ValueError(f'Mixup/CutMix needs an even batch, got {inputs.shape[0]} '
                                 'images (set drop_last=True and an even batch_size)')
            inputs, labels = self.mixup(inputs, labels)
        return dict(inputs=inputs, data_samples=labels)


@register_model()
class ImageClassifier(BaseModel):
    """Backbone, global average pooling and a :class:`LinearClsHead`.

    The backbone's dense output norms (``norm{i}`` of ConvNeXt and the isotropic model) are not
    used for classification; they are kept frozen at their initial identity so the checkpoint
    holds every key a detection/segmentation backbone of the same arch has, with the values
    those norms would start from anyway.

    Other dense backbones (MMDetection's or MMSegmentation's ``ResNet`` and
    ``SwinTransformer``, e.g. ``type='mmdet.ResNet'``) are used as they are: the last map of
    their output tuple is pooled, and ``head.in_channels`` must be given. Their checkpoint has
    the same ``backbone.*`` layout, so it initialises their detection/segmentation configs
    (``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).

    Args:
        backbone: Config of a backbone keeping the contract of
            :class:`backbones.models.base.Backbone` (ConvNeXt, ConvNeXtIsotropic,
            ModernizedResNet): the last map of ``forward_features`` is pooled; or of any
            backbone whose forward returns a tuple of ``(N, C, H, W)`` maps.
        head: :class:`LinearClsHead` config; ``in_channels`` defaults to the backbone's
            ``num_features`` and ``pre_norm`` to its ``final_norm`` (to True for other
            backbones).
        data_preprocessor: Data preprocessor config (default :class:`ClsDataPreprocessor`).
        init_cfg: MMEngine init config; a ``Pretrained`` one loads whole classifiers of any
            format (converted on load).
    """

    #: Keys a checkpoint may lack (the fit check of ``tools/test.py`` / ``load_from``): the
    #: unused dense output norms, which ImageNet checkpoints of every format do not have.
    optional_checkpoint_keys = r'backbone\.norm\d+\.'

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        data_preprocessor = dict(data_preprocessor or dict(type='ClsDataPreprocessor'))
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.own_backbone = isinstance(self.backbone, Backbone)
        head = dict(head)
        head.setdefault('type', 'LinearClsHead')
        if self.own_backbone:
            head.setdefault('in_channels', self.backbone.num_features)
            # Roadmap steps before BN -> LN have no final LayerNorm.
            head.setdefault('pre_norm', self.backbone.final_norm)
        elif 'in_channels' not in head:
            raise ValueError(f'ImageClassifier: head.in_channels is needed for a '
                             f'{type(self.backbone).__name__} backbone (the channels of its '
                             'last output map); only backbones of this package report them')
        self.head = MODELS.build(head)
        if self.own_backbone:
            for name, module in self.backbone.named_children():
                if OUTPUT_NORM.match(name):
                    module.requires_grad_(False)
            # Foreign formats (official, timm, mmpretrain) exist for this package's backbones.
            self._register_load_state_dict_pre_hook(self._convert_foreign_state_dict)

    @staticmethod
    def _convert_foreign_state_dict(state_dict, prefix, *args) -> None:
        # Official/timm/mmpretrain classifier checkpoints arrive with their own names: rename in
        # place so load_state_dict (load_from, tools/test.py, Pretrained) sees ours.
        own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not own or all(k.startswith(('backbone.', 'head.norm.', 'head.fc.')) for k in own):
            return
        converted = convert_classifier_checkpoint(own)
        for key in list(state_dict):
            if key.startswith(prefix):
                del state_dict[key]
        state_dict.update({prefix + k: v for k, v in converted.items()})

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Globally pooled last-stage features ``(N, C)``."""
        if self.own_backbone:
            features = self.backbone.forward_features(inputs)[-1]
        else:
            outputs = self.backbone(inputs)
            if not isinstance(outputs, (tuple, list)) or not outputs or outputs[-1].dim() != 4:
                raise TypeError(f'ImageClassifier: {type(self.backbone).__name__} must return a '
                                'tuple of (N, C, H, W) maps')
            features = outputs[-1]
        return features.mean((2, 3))

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[torch.Tensor] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, dict, List[dict]]:
        """MMEngine's three modes.

        Args:
            inputs: Normalised images ``(N, 3, H, W)``.
            data_samples: Class indices ``(N,)`` or soft targets ``(N, num_classes)``.
            mode: ``'tensor'`` (logits), ``'loss'`` (``dict(loss=...)``) or ``'predict'``
                (one ``dict(pred_score, pred_label, gt_label)`` per image).
        """
        logits = self.head(self.extract_feat(inputs))
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            if data_samples is None:
                raise ValueError('ImageClassifier: mode="loss" needs targets')
            return dict(loss=self.head.loss(logits, data_samples))
        if mode == 'predict':
            scores = logits.float().softmax(dim=1)
            labels: Sequence = ([None] * len(scores) if data_samples is None else
                                data_samples.tolist())
            return [
                dict(pred_score=s, pred_label=int(s.argmax()), gt_label=g)
                for s, g in zip(scores, labels)
            ]
        raise ValueError(f'ImageClassifier: unknown mode {mode!r} (tensor, loss or predict)')


__all__ = ['ImageClassifier', 'LinearClsHead', 'ClsDataPreprocessor']
