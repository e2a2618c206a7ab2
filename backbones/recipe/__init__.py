"""The ImageNet training recipe's engine parts (PAPER.md section 3) for MMEngine: model EMA
evaluated beside the raw weights, and lr scaling by the effective batch (accumulation counted).
Augmentation and losses are timm's own (see backbones.datasets.imagefolder and
backbones.models.classifier)."""
from .ema import ModelEMAHook
from .runner import EffectiveBatchRunner, effective_batch_size

__all__ = ['ModelEMAHook', 'EffectiveBatchRunner', 'effective_batch_size']
