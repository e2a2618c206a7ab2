"""Run by tests/test_entry_points.py under ``torchrun --nproc_per_node 2`` (gloo): one DDP
backward of ConvNeXt-atto, then of a bare channels-last depthwise conv (the control: the
layout DDP warns about). Rank 0 prints one JSON line: per model whether DDP warned about grad
strides, and how far the averaged gradients are from one process's on the whole batch."""
import copy
import json
import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from backbones.models import ConvNeXt

PHRASE = 'Grad strides do not match bucket view strides'


class Control(nn.Module):
    """A channels-last depthwise conv net without our gradient re-striding."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, 4)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)

    def forward(self, x):
        return (self.dw(self.stem(x.contiguous(memory_format=torch.channels_last))), )


def loss_of(outputs):
    # A fixed random projection: the outputs are layer-normed, so the mean of their squares is
    # about constant and its gradients would be rounding noise.
    g = torch.Generator().manual_seed(2)
    return sum((o.float() * torch.randn(o.shape, generator=g)).mean() for o in outputs)


def check(model, inputs, rank):
    """DDP backward on this rank's half of ``inputs``; the single-process reference on all."""
    reference = copy.deepcopy(model)
    ddp = DistributedDataParallel(model)
    half = inputs.shape[0] // 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        loss_of(ddp(inputs[rank * half:(rank + 1) * half])).backward()
    warned = any(PHRASE in str(w.message) for w in caught)
    # DDP averages the ranks' gradients: the gradient of the mean of the two halves' losses.
    ((loss_of(reference(inputs[:half])) + loss_of(reference(inputs[half:]))) / 2).backward()
    diffs, strides = [], []
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        diffs.append(((p.grad - q.grad).abs().max() / q.grad.abs().max().clamp_min(1e-12)).item())
        if p.grad.stride() != p.stride():
            strides.append(name)
    return dict(warned=warned, max_rel_grad_diff=max(diffs), params=len(diffs),
                grad_strides_differ=strides)


def main():
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    torch.manual_seed(0)
    inputs = torch.randn(4, 3, 64, 64)
    result = {}
    for name, build in (('convnext_atto', lambda: ConvNeXt('atto', out_indices=(0, 1, 2, 3))),
                        ('control', Control)):
        torch.manual_seed(1)  # the same weights on both ranks
        model = build().train()
        result[name] = check(model, inputs, rank)
    if rank == 0:
        print(json.dumps(result), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
