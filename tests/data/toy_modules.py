"""A deterministic toy dataset and model for testing the training entry points in seconds."""
import os
import os.path as osp

import torch
import torch.nn as nn
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS, TRANSFORMS


@DATASETS.register_module()
class ToyDataset(BaseDataset):
    """``num`` random 3x16x16 images whose label is the sign of their mean (seeded)."""

    def __init__(self, num=16, seed=0, **kwargs):
        self.num, self.seed = num, seed
        super().__init__(serialize_data=False, lazy_init=False, **kwargs)

    def load_data_list(self):
        g = torch.Generator().manual_seed(self.seed)
        images = torch.randn(self.num, 3, 16, 16, generator=g)
        return [dict(inputs=img, label=int(img.mean() > 0)) for img in images]

    def prepare_data(self, idx):
        return self.get_data_info(idx)


@DATASETS.register_module()
class PngFolderToy(BaseDataset):
    """The image files of ``folder`` (sorted, then the names in ``extra``, which need not
    exist) for the toy classifier, read by the pipeline (labels alternate 0, 1)."""

    def __init__(self, folder, extra=(), **kwargs):
        self.folder, self.extra = folder, list(extra)
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        names = sorted(os.listdir(self.folder)) + self.extra
        return [dict(img_path=osp.join(self.folder, n), label=i % 2)
                for i, n in enumerate(names)]


@TRANSFORMS.register_module()
class ToToyInputs:
    """A loaded image (``results['img']``, HWC uint8) as the toy classifier's input."""

    def __call__(self, results):
        img = torch.from_numpy(results['img']).permute(2, 0, 1).float() / 255
        return dict(inputs=img, label=results['label'])


@MODELS.register_module()
class ToyClassifier(BaseModel):

    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.fc = nn.Linear(width, 2)

    def forward(self, inputs, label=None, mode='tensor', **meta):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        logits = self.fc(self.conv(x).relu().mean((2, 3)))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, torch.as_tensor(label)))
        if mode == 'predict':
            return [dict(pred=p, label=t) for p, t in zip(logits.argmax(1), label)]
        return logits


@METRICS.register_module()
class ToyAccuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(int(s['pred']) == int(s['label']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=sum(results) / len(results))
