"""COCO-format instance data (real COCO and the synthetic shapes) with an up-front path check.

Without the check, a wrong ``data_root`` surfaces as pycocotools' bare ``No such file`` deep in
the loader (or, for the image folder, only when the first batch is read); this names the path,
the config key and how to get the data instead.
"""
import os.path as osp
import re
from typing import Mapping, Optional

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

_REMOTE = re.compile(r'^[a-z0-9+.-]+://', re.I)


def _data_hint(path: str) -> str:
    if 'shapes' in path:
        return ('generate the synthetic set with `python tools/data/make_shapes.py` '
                '(or `--out DIR`), or point data_root elsewhere')
    return 'see tools/data/README.md for the expected layout, or point data_root elsewhere'


def check_dataset_paths(data_root: Optional[str],
                        ann_file: Optional[str] = None,
                        data_prefix: Optional[Mapping[str, str]] = None) -> None:
    """Fail with a clear message when a dataset's root, annotation file or image folder is
    missing. Remote paths (``s3://`` and the like) are not checked.

    Args:
        data_root: The dataset's ``data_root`` (may be empty).
        ann_file: The annotation file, already joined with ``data_root``.
        data_prefix: Image folders, already joined with ``data_root`` (e.g. ``dict(img=...)``).

    Raises:
        FileNotFoundError: naming the missing path and the config key it came from.
    """
    if data_root and not _REMOTE.match(data_root) and not osp.isdir(data_root):
        raise FileNotFoundError(
            f'dataset root not found: {data_root!r} (config key data_root, resolved from '
            f'{osp.abspath(".")}); {_data_hint(data_root)}.')
    if ann_file and not _REMOTE.match(ann_file) and not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'annotation file not found: {ann_file!r} (config key ann_file, joined with '
            f'data_root {data_root!r}); {_data_hint(ann_file)}.')
    for key, folder in (data_prefix or {}).items():
        if folder and not _REMOTE.match(folder) and not osp.isdir(folder):
            raise FileNotFoundError(
                f'image folder not found: {folder!r} (config key data_prefix.{key}, joined with '
                f'data_root {data_root!r}); {_data_hint(folder)}.')


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """MMDetection's :class:`~mmdet.datasets.CocoDataset`, checking its paths before loading.

    Used for COCO 2017 and for the synthetic shapes alike (only ``data_root``, ``ann_file``
    and ``metainfo`` differ); the evaluator is MMDetection's ``CocoMetric`` for both. Takes
    exactly :class:`~mmdet.datasets.CocoDataset`'s arguments.
    """

    def full_init(self) -> None:
        """Check the data root, annotation file and image folder, then load as usual."""
        if not self._fully_initialized:
            check_dataset_paths(self.data_root, self.ann_file, self.data_prefix)
        super().full_init()
