"""Synthetic training inputs for a detector or segmentor: timing and GPU checks without data.

Used by ``tools/analysis/benchmark.py --mode train-model`` and the ``gpu`` tests.
"""
from typing import Sequence

import torch
from torch import nn


def synthetic_batch(model: nn.Module, batch: int, size: Sequence[int], num_classes: int = 3,
                    preprocess: bool = True) -> dict:
    """Images with four boxes and masks each (detector) or a label map (segmentor).

    Args:
        model: An MMDetection detector or MMSegmentation segmentor (``decode_head`` tells).
        batch: Number of images.
        size: ``(H, W)`` of every image.
        num_classes: Labels are drawn from ``range(num_classes)``.
        preprocess: Run the model's data preprocessor (``training=True``), which moves the
            batch to the model's device; ``False`` returns the raw dict that
            ``model.train_step`` takes.

    Returns:
        ``dict(inputs=..., data_samples=...)``, seeded (the same call gives the same batch).
    """
    from mmengine.structures import InstanceData, PixelData
    g = torch.Generator().manual_seed(0)
    h, w = size
    inputs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
              for _ in range(batch)]
    samples = []
    is_seg = hasattr(model, 'decode_head')
    for _ in range(batch):
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1., 1.))
        if is_seg:
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, num_classes, (1, h, w), generator=g))
        else:
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            sample = DetDataSample(metainfo=meta)
            boxes, masks = [], torch.zeros(4, h, w, dtype=torch.uint8)
            for k in range(4):
                x0, y0 = int(w * k / 5), int(h * k / 5)
                x1, y1 = x0 + w // 4, y0 + h // 4
                boxes.append([x0, y0, x1, y1])
                masks[k, y0:y1, x0:x1] = 1
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32),
                labels=torch.arange(4) % num_classes,
                masks=BitmapMasks(masks.numpy(), h, w))
        samples.append(sample)
    data = dict(inputs=inputs, data_samples=samples)
    return model.data_preprocessor(data, training=True) if preprocess else data
