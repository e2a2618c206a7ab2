"""MMSegmentation's data sets with up-front checks: the data root and folders exist (else the
layout the config expects is shown), and every image has its label map (else the missing ones
are listed)."""
import os.path as osp
from typing import Dict, List, Optional

from mmseg.datasets import ADE20KDataset, BaseSegDataset

from backbones.registry import register_dataset
from backbones.utils import is_remote
from .checks import expected_layout, format_listing


def _seg_layout(data_prefix: Dict[str, str], img_suffix: str, seg_map_suffix: str) -> str:
    suffix = dict(img_path=img_suffix, seg_map_path=seg_map_suffix)
    return expected_layout([(osp.join(folder, f'<name>{suffix.get(key, "")}'),
                             f'data_prefix.{key}') for key, folder in data_prefix.items()],
                           'ade')


def check_seg_paths(data_root: Optional[str], data_prefix: Dict[str, str],
                    img_suffix: str = '.jpg', seg_map_suffix: str = '.png') -> None:
    """Fail with the expected layout when a segmentation data root or folder is missing.

    Args:
        data_root: The dataset's ``data_root``.
        data_prefix: ``img_path`` / ``seg_map_path`` folders, already joined with the root.
        img_suffix: The dataset's image suffix (for the layout shown).
        seg_map_suffix: The dataset's label-map suffix (for the layout shown).

    Raises:
        FileNotFoundError: naming the path, its config key and the layout this dataset's
            config expects.
    """
    layout = _seg_layout(data_prefix or {}, img_suffix, seg_map_suffix)
    if data_root and not is_remote(data_root) and not osp.isdir(data_root):
        raise FileNotFoundError(f'dataset root not found: {data_root!r} (config key data_root, '
                                f'resolved from {osp.abspath(".")}); {layout}.')
    for key, folder in (data_prefix or {}).items():
        if folder and not is_remote(folder) and not osp.isdir(folder):
            raise FileNotFoundError(f'folder not found: {folder!r} (config key data_prefix.{key}'
                                    f', joined with data_root {data_root!r}); {layout}.')


class _CheckedPaths:
    """The checks, for a subclass of an MMSegmentation data set (same arguments)."""

    def full_init(self) -> None:
        if not self._fully_initialized:
            check_seg_paths(self.data_root, self.data_prefix, self.img_suffix,
                            self.seg_map_suffix)
        super().full_init()

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        layout = _seg_layout(self.data_prefix, self.img_suffix, self.seg_map_suffix)
        if not data_list and not is_remote(self.data_prefix.get('img_path', '')):
            raise FileNotFoundError(
                f'no images with suffix {self.img_suffix!r} in '
                f'{self.data_prefix.get("img_path")!r}; {layout}.')
        missing = [d['seg_map_path'] for d in data_list
                   if d.get('seg_map_path') and not is_remote(d['seg_map_path'])
                   and not osp.isfile(d['seg_map_path'])]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of {len(data_list)} images have no label map (a half-'
                f'copied data set?):\n{format_listing(missing)}\n{layout}.')
        return data_list


@register_dataset()
class CheckedBaseSegDataset(_CheckedPaths, BaseSegDataset):
    """MMSegmentation's ``BaseSegDataset`` with the checks of this module."""


@register_dataset()
class CheckedADE20KDataset(_CheckedPaths, ADE20KDataset):
    """MMSegmentation's ``ADE20KDataset`` with the checks of this module."""
