"""Plain-PyTorch peer runs on the shapes data: the demo's questions asked without our toolkit.

    python tools/analysis/peer_probe.py cls [--models convnext_atto convnext_atto:bn resnet18]
        [--steps 744] [--lr 2e-3] [--eval-every 186] [--data data/shapes]
        [--out work_dirs/peer_probe] [--threads 1]
    python tools/analysis/peer_probe.py seg [--models convnext_atto resnet18] [--steps 400]
        [--lr 1e-3] [--eval-every 100] ...

``cls`` trains classifiers on the demo's crops (top-1), ``seg`` a minimal FPN-style segmenter on
its scenes (mIoU). Writes OUT/<task>.csv and OUT/<task>.png (curves). Models run one after
another.

When every demo row stalls (UperNet near 31 mIoU whatever the backbone) or one backbone trails
another, the first suspect is our own pipeline. These runs train timm's models with a bare loop
on the very files the demo reads, with nothing of MMEngine, MMDetection, MMSegmentation or the
``backbones`` package in the path (this file imports none of them; timm's transforms and data
set for the crops, a flip for the scenes, AdamW, one-cycle lr). A finding that holds here does
not come from our configs, runner or heads.

A model is named by a spec: a timm model name (``convnext_atto``, ``resnet18``), optionally with
``:bn``: the same ConvNeXt with BatchNorm in place of its LayerNorms (timm then needs the
MLP as 1x1 convs, so every norm sees NCHW input; ``convnext_atto:ln`` is that layout with
LayerNorm, the fair reference for ``:bn``). ``swin_demo`` is timm's Swin Transformer in the
demo's shape (embed 32, depths 2-2-6-2, heads 1-2-4-8, window 4: the demo's MMDetection Swin,
``configs/_base_/demo_backbones.py``), built for the task's input size. timm follows the
original Swin: on a map no larger than the window the window shrinks to the map and the shift
is dropped. MMDetection's Swin instead pads such a map up to the window and shifts it (the
demo's 64-px crops give a 2x2 last stage); ``swin_demo:pad`` does that in timm
(``always_partition``).
"""
import argparse
import csv
import glob
import os
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import ImageDataset, create_transform

#: Background weight of the segmentation loss: the demo configs' class weight.
SEG_BACKGROUND_WEIGHT = 0.2
_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
_STD = np.array([58.395, 57.12, 57.375], np.float32)


#: Named specs: a timm architecture with arguments. Swin's attention masks depend on the input
#: size, so it is built for the size of the task (``img_size``).
PRESETS = {
    'swin_demo': ('swin_tiny_patch4_window7_224',
                  dict(embed_dim=32, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8),
                       window_size=4, drop_path_rate=0.0)),
}


def build_timm_model(spec: str, img_size: int = 64, **kwargs) -> nn.Module:
    """A timm model from a spec (``name``, ``name:bn`` / ``name:ln``, or a :data:`PRESETS`
    name, ``swin_demo:pad``; see the module doc).

    Args:
        spec: The model spec.
        img_size: Input size, for the presets that are built for one (Swin).
        **kwargs: Passed to ``timm.create_model`` (``num_classes``, ``features_only``).

    Returns:
        The randomly initialised model.
    """
    name, _, norm = spec.partition(':')
    if name in PRESETS:
        if norm not in ('', 'pad') or not name.startswith('swin'):
            raise ValueError(f'model spec {spec!r}: only ":pad" applies to {name}')
        arch, preset = PRESETS[name]
        return timm.create_model(arch, pretrained=False, img_size=img_size,
                                 always_partition=norm == 'pad', **dict(preset, **kwargs))
    if norm:
        if norm not in ('bn', 'ln') or not name.startswith('convnext'):
            raise ValueError(f'model spec {spec!r}: ":bn" / ":ln" apply to timm ConvNeXt '
                             'models only (e.g. convnext_atto:bn)')
        kwargs['conv_mlp'] = True
        if norm == 'bn':
            kwargs['norm_layer'] = 'batchnorm2d'
    return timm.create_model(name, pretrained=False, **kwargs)


def _lr_schedule(optimizer: torch.optim.Optimizer, lr: float, steps: int):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)


def train_classifier(spec: str, root: str, steps: int, lr: float = 2e-3, batch: int = 32,
                     eval_every: int = 186, seed: int = 0,
                     log: Callable[[str], None] = print) -> List[dict]:
    """Train a timm classifier on the shapes ImageFolder crops (``root``/train, ``root``/val)
    with timm's transforms (the demo's: 64 px, scale 0.6-1, flip) and a bare AdamW loop.

    Args:
        spec: Model spec.
        root: The ImageFolder layout (``data/shapes/cls``).
        steps: Optimizer steps.
        lr: Peak lr (one-cycle, 10% warm-up).
        batch: Batch size.
        eval_every: Evaluate top-1 on val every this many steps (and at the end).
        seed: Torch seed.
        log: Called with one progress line per evaluation.

    Returns:
        One record per evaluation: ``model, step, loss, top1, seconds``.
    """
    for split in ('train', 'val'):
        if not osp.isdir(osp.join(root, split)):
            raise FileNotFoundError(f'{osp.join(root, split)}: not found; write the shapes '
                                    'data with tools/data/make_shapes.py --layouts cls')
    torch.manual_seed(seed)
    train_tf = create_transform(64, is_training=True, scale=(0.6, 1.0), interpolation='bicubic',
                                color_jitter=None, auto_augment=None, re_prob=0.0)
    train = ImageDataset(osp.join(root, 'train'), transform=train_tf)
    val = ImageDataset(osp.join(root, 'val'), transform=create_transform(64, crop_pct=1.0))
    classes = len(train.reader.class_to_idx)
    model = build_timm_model(spec, num_classes=classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = _lr_schedule(optimizer, lr, steps)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = torch.utils.data.DataLoader(train, batch, shuffle=True, drop_last=True)

    def top1() -> float:
        model.eval()
        right = total = 0
        with torch.no_grad():
            for x, y in torch.utils.data.DataLoader(val, 100):
                right += int((model(x).argmax(1) == y).sum())
                total += len(y)
        model.train()
        return 100.0 * right / total

    records, step, start = [], 0, time.time()
    while step < steps:
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % eval_every == 0 or step == steps:
                records.append(dict(model=spec, step=step, loss=round(loss.item(), 4),
                                    top1=round(top1(), 2),
                                    seconds=round(time.time() - start, 1)))
                log(f'[peer cls] {spec} step {step}/{steps}: loss {records[-1]["loss"]:.3f}, '
                    f'top-1 {records[-1]["top1"]:.1f}')
            if step == steps:
                break
    return records


def load_segmentation_split(root: str, split: str):
    """Images (normalised, NCHW float) and label maps (NHW long) of one ADE-layout split.

    Args:
        root: The ADE layout (``data/shapes/ade``).
        split: ``'training'`` or ``'validation'``.
    """
    images = sorted(glob.glob(osp.join(root, 'images', split, '*.jpg')))
    if not images:
        raise FileNotFoundError(f'{osp.join(root, "images", split)}: no .jpg images; write the '
                                'shapes data with tools/data/make_shapes.py --layouts ade')
    xs, ys = [], []
    for path in images:
        label_path = osp.join(root, 'annotations', split, osp.basename(path)[:-4] + '.png')
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        if label is None:
            raise FileNotFoundError(f'{label_path}: label map of {path} missing or unreadable')
        xs.append((cv2.imread(path)[:, :, ::-1].astype(np.float32) - _MEAN) / _STD)
        ys.append(label)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(np.stack(ys).astype(np.int64))


class PlainSegmenter(nn.Module):
    """A timm backbone's four stride-4..32 maps, each projected to ``channels``, upsampled to
    stride 4, concatenated and classified (a minimal FPN-style head, not UperNet)."""

    def __init__(self, spec: str, num_classes: int, channels: int = 64, img_size: int = 128):
        super().__init__()
        self.backbone = build_timm_model(spec, img_size=img_size, features_only=True)
        in_channels = self.backbone.feature_info.channels()[-4:]
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(4 * channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True), nn.Conv2d(channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.backbone(x)[-4:]
        if str(getattr(self.backbone, 'output_fmt', 'NCHW')).endswith('NHWC'):
            maps = [m.permute(0, 3, 1, 2) for m in maps]  # timm's Swin returns NHWC maps
        size = maps[0].shape[-2:]
        fused = torch.cat([F.interpolate(lat(m), size, mode='bilinear', align_corners=False)
                           for lat, m in zip(self.lateral, maps)], 1)
        return F.interpolate(self.fuse(fused), x.shape[-2:], mode='bilinear',
                             align_corners=False)


def iou_per_class(pred: torch.Tensor, label: torch.Tensor, num_classes: int) -> np.ndarray:
    """IoU of every class over a whole split (intersections and unions summed over images, as
    MMSegmentation's IoUMetric does), in percent; NaN for a class absent from both."""
    ious = np.full(num_classes, np.nan)
    for c in range(num_classes):
        union = int(((pred == c) | (label == c)).sum())
        if union:
            ious[c] = 100.0 * int(((pred == c) & (label == c)).sum()) / union
    return ious


def train_segmenter(spec: str, root: str, steps: int, lr: float = 1e-3, batch: int = 8,
                    eval_every: int = 100, seed: int = 0, num_classes: int = 4,
                    log: Callable[[str], None] = print) -> List[dict]:
    """Train :class:`PlainSegmenter` on the shapes ADE layout with a bare loop (random flip,
    cross-entropy with the background weighted :data:`SEG_BACKGROUND_WEIGHT`, AdamW) and
    evaluate mIoU on the validation split.

    Args:
        spec: Backbone spec.
        root: The ADE layout (``data/shapes/ade``).
        steps: Optimizer steps.
        lr: Peak lr (one-cycle, 10% warm-up).
        batch: Batch size.
        eval_every: Evaluate every this many steps (and at the end).
        seed: Torch seed.
        num_classes: Classes of the label maps, background (0) included.
        log: Called with one progress line per evaluation.

    Returns:
        One record per evaluation: ``model, step, loss, miou, iou_<class index>..., seconds``.
    """
    torch.manual_seed(seed)
    x_train, y_train = load_segmentation_split(root, 'training')
    x_val, y_val = load_segmentation_split(root, 'validation')
    if int(y_train.max()) >= num_classes:
        raise ValueError(f'{root}: label {int(y_train.max())} in the training maps, but '
                         f'num_classes={num_classes}')
    model = PlainSegmenter(spec, num_classes, img_size=x_train.shape[-1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    schedule = _lr_schedule(optimizer, lr, steps)
    weight = torch.ones(num_classes)
    weight[0] = SEG_BACKGROUND_WEIGHT
    records, start = [], time.time()
    for step in range(1, steps + 1):
        pick = torch.randint(len(x_train), (batch, ))
        x, y = x_train[pick], y_train[pick]
        if torch.rand(1).item() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        loss = F.cross_entropy(model(x), y, weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % eval_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                pred = torch.cat([model(x_val[i:i + 20]).argmax(1)
                                  for i in range(0, len(x_val), 20)])
            model.train()
            ious = iou_per_class(pred, y_val, num_classes)
            record = dict(model=spec, step=step, loss=round(loss.item(), 4),
                          miou=round(float(np.nanmean(ious)), 2))
            record.update({f'iou_{c}': round(float(v), 2) for c, v in enumerate(ious)})
            record['seconds'] = round(time.time() - start, 1)
            records.append(record)
            log(f'[peer seg] {spec} step {step}/{steps}: loss {record["loss"]:.3f}, mIoU '
                f'{record["miou"]:.1f} (per class {", ".join(f"{v:.1f}" for v in ious)})')
    return records


def write_records(records: Sequence[dict], path: str) -> None:
    """Write the evaluation records as CSV (the union of their keys as columns)."""
    columns: List[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(records)


def plot_records(records: Sequence[dict], metric: str, path: str,
                 title: Optional[str] = None) -> None:
    """One curve of ``metric`` over steps per model, saved as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    curves: Dict[str, List[dict]] = {}
    for record in records:
        curves.setdefault(record['model'], []).append(record)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for model, points in curves.items():
        ax.plot([p['step'] for p in points], [p[metric] for p in points], marker='o',
                label=model)
    ax.set_xlabel('step')
    ax.set_ylabel(metric)
    ax.set_title(title or f'plain-PyTorch peer runs: {metric}')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- the command line -------------------------------------------------------------------------

DEFAULTS = dict(cls=dict(models=['convnext_atto', 'convnext_atto:ln', 'convnext_atto:bn',
                                 'resnet18'], steps=744, lr=2e-3, eval_every=186),
                seg=dict(models=['convnext_atto', 'resnet18'], steps=400, lr=1e-3,
                         eval_every=100))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plain-PyTorch peer runs on the shapes data')
    parser.add_argument('task', choices=['cls', 'seg'])
    parser.add_argument('--models', nargs='+', help='timm model specs (name or name:bn / '
                        'name:ln for ConvNeXt, swin_demo or swin_demo:pad); default: see the '
                        'module docstring')
    parser.add_argument('--steps', type=int, help='optimizer steps per model')
    parser.add_argument('--lr', type=float, help='peak lr (AdamW, one-cycle)')
    parser.add_argument('--eval-every', type=int, help='evaluate every N steps')
    parser.add_argument('--batch', type=int, help='batch size (default 32 cls, 8 seg)')
    parser.add_argument('--data', default='data/shapes', help='root of the shapes data')
    parser.add_argument('--out', default='work_dirs/peer_probe', help='output folder')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for key, value in DEFAULTS[args.task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch is None:
        args.batch = 32 if args.task == 'cls' else 8
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train = train_classifier if args.task == 'cls' else train_segmenter
    root = osp.join(args.data, 'cls' if args.task == 'cls' else 'ade')
    records = []
    try:
        for spec in args.models:
            records += train(spec, root, args.steps, lr=args.lr, batch=args.batch,
                             eval_every=args.eval_every, seed=args.seed)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'peer_probe: {e}')
    metric = 'top1' if args.task == 'cls' else 'miou'
    csv_path, png_path = (osp.join(args.out, f'{args.task}.{ext}') for ext in ('csv', 'png'))
    write_records(records, csv_path)
    plot_records(records, metric, png_path)
    print(f'peer_probe: wrote {csv_path} and {png_path}')


if __name__ == '__main__':
    main()
