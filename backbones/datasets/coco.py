"""COCO-format instance data (real COCO and the synthetic shapes) with up-front checks.

Without them, a wrong ``data_root`` surfaces as pycocotools' bare ``No such file`` deep in
the loader (or, for the image folder, only when the first batch is read), a half-copied image
folder only when a missing image comes up hours later, and bad annotations are dropped
silently by MMDetection's parser (or stop it with a bare ``KeyError``). These name the path,
the config key, what is wrong and how to get the data instead.
"""
import json
import logging
import os.path as osp
from typing import List, Mapping, Optional

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO
from mmengine.logging import print_log

from backbones.registry import register_dataset
from backbones.utils import is_remote
from .checks import AnnotationError, check_coco_annotations, expected_layout, format_listing


def _layout(ann_file: Optional[str], data_prefix: Optional[Mapping[str, str]]) -> str:
    entries = [(ann_file, 'ann_file')] if ann_file else []
    entries += [(osp.join(folder, '<images>'), f'data_prefix.{key}')
                for key, folder in (data_prefix or {}).items() if folder]
    return expected_layout(entries, 'coco') if entries else 'see tools/data/README.md'


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
        FileNotFoundError: naming the missing path, the config key it came from and the layout
            that ``ann_file`` and ``data_prefix`` describe.
    """
    layout = _layout(ann_file, data_prefix)
    if data_root and not is_remote(data_root) and not osp.isdir(data_root):
        raise FileNotFoundError(
            f'dataset root not found: {data_root!r} (config key data_root, resolved from '
            f'{osp.abspath(".")}); {layout}.')
    if ann_file and not is_remote(ann_file) and not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'annotation file not found: {ann_file!r} (config key ann_file, joined with '
            f'data_root {data_root!r}); {layout}.')
    for key, folder in (data_prefix or {}).items():
        if folder and not is_remote(folder) and not osp.isdir(folder):
            raise FileNotFoundError(
                f'image folder not found: {folder!r} (config key data_prefix.{key}, joined with '
                f'data_root {data_root!r}); {layout}.')


class _CheckedCOCO(COCO):
    """mmdet's COCO API over a JSON file that was checked first (see CheckedCocoDataset)."""

    def __init__(self, annotation_file: str, check) -> None:
        try:
            with open(annotation_file) as f:
                raw = json.load(f)
        except json.JSONDecodeError as e:
            raise AnnotationError(f'annotation file {annotation_file!r} is not valid JSON '
                                  f'(truncated or damaged?): {e}') from e
        super().__init__(None)
        self.dataset = check(raw)
        self.createIndex()
        self.img_ann_map = self.imgToAnns
        self.cat_img_map = self.catToImgs


@register_dataset()
class CheckedCocoDataset(CocoDataset):
    """MMDetection's :class:`~mmdet.datasets.CocoDataset`, checking its input before training.

    Used for COCO 2017 and for the synthetic shapes alike (only ``data_root``, ``ann_file``
    and ``metainfo`` differ); the evaluator is MMDetection's ``CocoMetric`` for both. Checks:
    the data root, annotation file and image folder exist; the annotations
    (:func:`~backbones.datasets.checks.check_coco_annotations`); every listed image file exists.

    Args:
        bad_annotations: ``'error'`` (default) or ``'skip'``: train on what MMDetection's
            ``CocoDataset`` makes of them, each one logged (see
            :func:`~backbones.datasets.checks.check_coco_annotations`).
        missing_images: ``'error'`` (default) or ``'skip'`` (drop those images, each logged).
        **kwargs: :class:`~mmdet.datasets.CocoDataset`'s arguments.
    """

    def __init__(self, *args, bad_annotations: str = 'error', missing_images: str = 'error',
                 **kwargs) -> None:
        for name, value in (('bad_annotations', bad_annotations),
                            ('missing_images', missing_images)):
            if value not in ('error', 'skip'):
                raise ValueError(f"CheckedCocoDataset: {name} must be 'error' or 'skip', got "
                                 f'{value!r}')
        self.bad_annotations = bad_annotations
        self.missing_images = missing_images
        super().__init__(*args, **kwargs)

    def full_init(self) -> None:
        """Check the data root, annotation file and image folder, then load as usual."""
        if not self._fully_initialized:
            check_dataset_paths(self.data_root, self.ann_file, self.data_prefix)
        super().full_init()

    def _check(self, raw):
        loads_masks = any(getattr(t, 'with_mask', False)
                          for t in getattr(self.pipeline, 'transforms', []))
        return check_coco_annotations(raw, self.ann_file, self.metainfo.get('classes'),
                                      self.bad_annotations, with_mask=loads_masks)

    def load_data_list(self) -> List[dict]:
        """Load the checked annotations, then check that every image file exists."""
        if is_remote(str(self.ann_file)):
            return super().load_data_list()
        # mmdet builds ``self.COCOAPI(path)``: an instance attribute routes it through the check.
        self.COCOAPI = lambda path: _CheckedCOCO(path, self._check)
        try:
            data_list = super().load_data_list()
        finally:
            del self.COCOAPI
        return self._check_image_files(data_list)

    def _check_image_files(self, data_list: List[dict]) -> List[dict]:
        missing = [d['img_path'] for d in data_list
                   if not is_remote(str(d['img_path'])) and not osp.isfile(d['img_path'])]
        if not missing:
            return data_list
        if self.missing_images == 'error':
            raise FileNotFoundError(
                f'{len(missing)} of {len(data_list)} images listed in {self.ann_file!r} are '
                f'missing (a half-copied data set?):\n{format_listing(missing)}\n'
                f'{_layout(self.ann_file, self.data_prefix)}. '
                "Or drop them (logged) with missing_images='skip' in the dataset config.")
        print_log(f'{self.ann_file}: dropped {len(missing)} images whose files are missing '
                  "(missing_images='skip'):\n  " + '\n  '.join(missing),
                  logger='current', level=logging.WARNING)
        gone = set(missing)
        return [d for d in data_list if d['img_path'] not in gone]
