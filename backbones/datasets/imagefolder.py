"""ImageFolder classification data (ImageNet, the synthetic shapes) with timm's transforms.

Layout: ``data_root/<split>/<class>/<image>``; classes are the sorted folder names of the
split (the ImageNet convention), and a val split must have the same class folders as train.
The transform is built by :func:`timm.data.create_transform` from the config's ``transform``
dict, so RandAugment, random erasing and the eval crop are timm's own.
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform
from torch.utils.data import Dataset

from backbones.registry import register_dataset
from .checks import expected_layout

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


def build_timm_transform(cfg: dict):
    """Build a torchvision-style transform with :func:`timm.data.create_transform`.

    Args:
        cfg: Its keyword arguments (``input_size``, ``is_training``, ``auto_augment``,
            ``interpolation``, ``re_prob``, ``crop_pct``, ``mean``, ``std``...).

    Returns:
        A callable from a PIL image to a normalised ``(3, H, W)`` tensor.
    """
    cfg = dict(cfg)
    cfg.pop('type', None)
    try:
        return create_transform(**cfg)
    except TypeError as e:
        raise TypeError(f'bad timm transform arguments {cfg}: {e}') from e


@register_dataset()
class ImageFolderDataset(Dataset):
    """``data_root/<split>/<class>/<image>`` with a timm transform.

    Each item is ``dict(inputs=(3, H, W) float tensor, data_samples=class index)``; collate with
    ``collate_fn=dict(type='default_collate')``.

    Args:
        data_root: The data set root.
        split: The split folder under ``data_root`` (``train`` / ``val``).
        transform: :func:`build_timm_transform` arguments.
        classes: Expected class names in label order; by default the sorted folder names.
        bad_image: ``'error'`` (default) stops at an unreadable image naming the file;
            ``'skip'`` logs it, substitutes another image and counts it
            (:attr:`skipped`).
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 transform: Optional[dict] = None,
                 classes: Optional[Sequence[str]] = None,
                 bad_image: str = 'error') -> None:
        if bad_image not in ('error', 'skip'):
            raise ValueError(f'bad_image must be "error" or "skip", got {bad_image!r}')
        self.root = osp.join(data_root, split)
        self.split = split
        self.bad_image = bad_image
        self.skipped: List[str] = []
        self.classes, self.samples = self._scan(data_root, classes)
        self.metainfo = dict(classes=tuple(self.classes))
        self.transform = build_timm_transform(transform or dict(input_size=224))

    def _scan(self, data_root: str,
              classes: Optional[Sequence[str]]) -> Tuple[List[str], List[Tuple[str, int]]]:
        layout = expected_layout([(osp.join(self.root, '<class>', '<image>'),
                                   'data_root + split')], 'cls')
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'dataset root not found: {data_root!r} (config key '
                                    f'data_root, resolved from {os.getcwd()}); {layout}.')
        if not osp.isdir(self.root):
            raise FileNotFoundError(f'split folder not found: {self.root!r} (data_root + split '
                                    f'{self.split!r}); {layout}.')
        found = sorted(d.name for d in os.scandir(self.root) if d.is_dir())
        if not found:
            raise FileNotFoundError(f'no class folders in {self.root!r}; {layout}.')
        if classes is not None and list(classes) != found:
            missing = sorted(set(classes) - set(found))
            extra = sorted(set(found) - set(classes))
            raise ValueError(f'class folders of {self.root!r} do not match the config\'s '
                             f'classes: missing {missing[:10]}, unexpected {extra[:10]} '
                             f'({len(found)} folders, {len(classes)} classes expected)')
        samples = []
        empty = []
        for label, name in enumerate(found):
            folder = osp.join(self.root, name)
            files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not files:
                empty.append(name)
            samples.extend((osp.join(folder, f), label) for f in files)
        if empty:
            raise FileNotFoundError(f'class folder(s) without images in {self.root!r}: '
                                    f'{empty[:10]} (extensions {", ".join(IMAGE_EXTENSIONS)})')
        return found, samples

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, path: str) -> Image.Image:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not in the transform
            return img.convert('RGB')

    def __getitem__(self, index: int) -> Dict[str, object]:
        for attempt in range(len(self.samples)):
            path, label = self.samples[(index + attempt) % len(self.samples)]
            try:
                image = self._load(path)
            except (OSError, UnidentifiedImageError, ValueError) as e:
                if self.bad_image == 'error':
                    raise OSError(f'cannot read image {path!r} ({type(e).__name__}: {e}); '
                                  'fix or remove it, or set bad_image="skip" on the dataset '
                                  'to skip unreadable images') from e
                self.skipped.append(path)
                print_log(f'skipped unreadable image {path} ({e}); {len(self.skipped)} skipped '
                          'so far', logger='current', level=logging.WARNING)
                continue
            return dict(inputs=self.transform(image), data_samples=torch.tensor(label))
        raise OSError(f'no readable image in {self.root!r}')


__all__ = ['ImageFolderDataset', 'build_timm_transform', 'IMAGE_EXTENSIONS']
