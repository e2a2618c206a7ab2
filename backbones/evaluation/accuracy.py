"""Top-k accuracy of classification predictions (ImageNet's top-1 / top-5)."""
from typing import Dict, List, Sequence

import torch
from mmengine.evaluator import BaseMetric

from backbones.registry import register_metric


@register_metric()
class TopKAccuracy(BaseMetric):
    """Percentage of images whose true class is among the ``k`` highest scores.

    Takes the ``predict`` outputs of :class:`backbones.models.ImageClassifier` (one
    ``dict(pred_score, gt_label)`` per image) and reports ``accuracy/top{k}`` in percent.

    Args:
        topk: The ``k`` values.
        prefix: Metric-name prefix (MMEngine convention); default ``'accuracy'``.
        collect_device: ``'cpu'`` or ``'gpu'`` for gathering results across processes.
    """
    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(sorted(set(int(k) for k in topk)))
        if not self.topk or self.topk[0] < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if sample.get('gt_label') is None:
                raise ValueError('TopKAccuracy needs ground-truth labels (gt_label is None)')
            score = sample['pred_score']
            num_classes = score.numel()
            # Rank of the true class: how many classes score strictly higher.
            rank = int((score > score[int(sample['gt_label'])]).sum())
            self.results.append(dict(rank=rank, num_classes=num_classes))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('TopKAccuracy: no predictions to evaluate')
        ranks = torch.tensor([r['rank'] for r in results])
        num_classes = results[0]['num_classes']
        return {
            f'top{k}': float((ranks < k).float().mean() * 100)
            for k in self.topk if k <= num_classes
        }
