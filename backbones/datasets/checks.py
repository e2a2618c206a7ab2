"""Input checks that fail before hours are spent, naming the file and what is wrong.

* :func:`check_coco_annotations`: a COCO annotation dict against itself (unknown images or
  categories, malformed, empty or degenerate boxes and polygons, duplicate ids) and against
  the config's class names. MMDetection's loader drops most such annotations silently and
  stops with a bare ``KeyError`` on the rest; here they are an error naming each one, or,
  with ``bad_annotations='skip'``, each is logged with what becomes of it while the data that
  reach the pipeline stay exactly MMDetection's.
* :func:`check_num_classes`: the heads' ``num_classes`` against the data set's class list.
* :class:`CheckedLoadImageFromFile`: a pipeline transform (registered for MMEngine, MMDetection
  and MMSegmentation pipelines) that stops at a missing, truncated or non-image file naming it
  (``on_error='raise'``, the default), or skips it (``on_error='skip'``): the file is logged,
  written to the run's ledger and counted in the final report
  (:class:`~backbones.engine.SkippedImagesReportHook`), and the data set substitutes another
  sample (MMEngine's ``BaseDataset`` refetch, training only).
"""
import logging
import math
import multiprocessing
import os
import os.path as osp
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from backbones.registry import register_transform

#: Environment variable naming the file that collects skipped images (set by the report hook).
SKIP_LEDGER_ENV = 'BACKBONES_SKIPPED_IMAGES'

_MAX_SHOWN = 20


class AnnotationError(ValueError):
    """An annotation file is malformed or inconsistent with the config."""


def format_listing(items: Sequence[str], limit: int = _MAX_SHOWN) -> str:
    """``items`` one per line, indented by two spaces: the first ``limit``, then a line saying
    how many more there are."""
    lines = [f'  {item}' for item in items[:limit]]
    if len(items) > limit:
        lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)


def expected_layout(entries: Sequence[Tuple[str, str]], kind: str) -> str:
    """The files and folders the config being run expects, for "not found" messages.

    Args:
        entries: ``(path as the config resolves it, config key)`` pairs.
        kind: The :mod:`tools/data/make_shapes.py` layout with this structure (``coco``,
            ``ade`` or ``cls``), for the hint that makes demo data.

    Returns:
        ``'this config expects:'``, one indented line per entry, and where data come from.
    """
    width = max(len(path) for path, _ in entries)
    lines = '\n'.join(f'  {path:<{width}}  ({key})' for path, key in entries)
    return (f'this config expects:\n{lines}\nDemo data in the layout of the *_shapes configs: '
            f'`python tools/data/make_shapes.py --layouts {kind}` (writes data/shapes/{kind}); '
            'real data sets: tools/data/README.md')


def _polygon_area(coords: Sequence[float]) -> float:
    xs, ys = np.asarray(coords[0::2], float), np.asarray(coords[1::2], float)
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


# What becomes of an odd annotation with bad_annotations='skip'. Only FATAL ones are changed
# here; the rest reach MMDetection's parser and LoadAnnotations untouched, so training sees
# exactly what MMDetection's CocoDataset gives.
FATAL = 'dropped here: MMDetection would stop on it or train on non-finite numbers'
UNUSED = "not used: MMDetection's parser skips it"
POLYGON = ('box kept: LoadAnnotations drops the bad polygon (the instance is ignored when no '
           'valid polygon is left)')
EMPTY_POLYGON = 'box kept: the polygon adds no pixels to its mask'
IGNORED = 'box kept as an ignored region: LoadAnnotations cannot read its mask'
AREA = "box kept: MMDetection reads the area only for its 'area <= 0' test"
_FATES = (FATAL, UNUSED, POLYGON, EMPTY_POLYGON, IGNORED, AREA)


def _finite_numbers(values: Sequence[Any]) -> Optional[str]:
    # JSON numbers only: MMDetection does arithmetic on them as they are ("3" would crash).
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return 'non-numeric values'
    if not all(math.isfinite(v) for v in values):
        return 'NaN or infinite values'
    return None


def _box_problem(ann: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """``(reason, fate)`` for the box and area, in the order MMDetection's parser reads them."""
    bbox = ann.get('bbox')
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return f'bbox {bbox!r} is not [x, y, w, h]', FATAL
    bad = _finite_numbers(bbox)
    if bad:
        return f'bbox {bbox!r} has {bad}', FATAL
    area = ann.get('area')
    if isinstance(area, bool) or not isinstance(area, (int, float)):
        return f'area {area!r} is not a number', FATAL
    if bbox[2] < 1 or bbox[3] < 1:
        return f'bbox {bbox!r} is empty or degenerate (width or height below 1 px)', UNUSED
    if area <= 0:
        return f'area {area!r} is not positive', UNUSED
    if not math.isfinite(area):
        return f'area {area!r} is NaN or infinite', AREA
    return None


def _segmentation_problem(seg: Any, loads_masks: bool) -> Optional[Tuple[str, str]]:
    """``(reason, fate)`` for ``segmentation`` as LoadAnnotations(with_mask=True) reads it."""
    if seg is None:
        return None
    if isinstance(seg, dict):  # RLE
        if seg.get('size') is None or not isinstance(seg.get('counts'), (list, str)):
            return 'RLE segmentation without counts (a list or string) and size', IGNORED
        return None
    if not isinstance(seg, list):
        return f'segmentation is a {type(seg).__name__}, not polygons or RLE', FATAL
    if not seg:
        # MMDetection's parser keeps no mask for it, and LoadAnnotations then has none to load.
        return 'segmentation is empty (no polygon)', FATAL if loads_masks else UNUSED
    found = None
    for poly in seg:
        if not isinstance(poly, (list, tuple)):
            return f'polygon {str(poly)[:40]} is not a list of coordinates', FATAL
        bad = _finite_numbers(poly)
        if bad:
            return f'polygon has {bad}', FATAL
        if len(poly) < 6 or len(poly) % 2:
            found = found or (f'polygon with {len(poly)} coordinates (needs an even number, at '
                              'least 3 points)', POLYGON)
        elif _polygon_area(poly) <= 0:
            found = found or ('polygon is degenerate (zero area)', EMPTY_POLYGON)
    return found


def check_coco_annotations(raw: Dict[str, Any],
                           ann_file: str,
                           classes: Optional[Sequence[str]] = None,
                           bad_annotations: str = 'error',
                           with_mask: bool = True) -> Dict[str, Any]:
    """Check a loaded COCO instance annotation dict.

    Args:
        raw: The parsed JSON (``images``, ``annotations``, ``categories``).
        ann_file: Its path, for messages.
        classes: The config's class names (``metainfo.classes``); each must be a category.
        bad_annotations: ``'error'`` raises listing every odd annotation. ``'skip'`` logs each
            one with what becomes of it, and changes only those MMDetection would stop on or
            train on non-finite numbers from (malformed ids, boxes, areas or masks): they are
            marked ``ignore`` (MMDetection's parser skips them and keeps their image) or, when
            the COCO index could not hold them, removed. Everything else (unknown image or
            category ids, boxes under 1 px, bad or zero-area polygons) is left for
            MMDetection's parser and ``LoadAnnotations`` to handle as they always do, so the
            images and instances are exactly those of MMDetection's ``CocoDataset``.
        with_mask: The pipeline loads masks: an empty ``segmentation`` then leaves
            ``LoadAnnotations`` without a mask to load.

    Returns:
        ``raw``, or a copy with the fatal annotations marked or removed.

    Raises:
        AnnotationError: naming ``ann_file`` and listing the problems (ids and reasons).
    """
    if bad_annotations not in ('error', 'skip'):
        raise ValueError(f"bad_annotations must be 'error' or 'skip', got {bad_annotations!r}")
    if not isinstance(raw, dict):
        raise AnnotationError(f'{ann_file}: not a COCO annotation file (top level is '
                              f'{type(raw).__name__}, expected an object)')
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(raw.get(k), list)]
    if missing:
        raise AnnotationError(f'{ann_file}: not a COCO instance annotation file: no list '
                              f'{", ".join(repr(k) for k in missing)} at the top level')
    images, cats = {}, {}
    for kind, items, table in (('image', raw['images'], images),
                               ('category', raw['categories'], cats)):
        need = ('id', 'file_name', 'width', 'height') if kind == 'image' else ('id', 'name')
        for i, item in enumerate(items):
            if not isinstance(item, dict) or any(k not in item for k in need):
                raise AnnotationError(f'{ann_file}: {kind} entry {i} lacks '
                                      f'{" or ".join(need)}: {str(item)[:120]}')
            if item['id'] in table:
                raise AnnotationError(f'{ann_file}: duplicate {kind} id {item["id"]!r}')
            table[item['id']] = item
    names = [c['name'] for c in cats.values()]
    if classes is not None:
        absent = [c for c in classes if c not in names]
        if absent:
            raise AnnotationError(
                f'{ann_file}: the config\'s classes {absent} are not categories of this file '
                f'(its categories: {names[:30]}{" ..." if len(names) > 30 else ""}); their '
                'annotations would be silently missing. Fix metainfo.classes or the file.')

    problems: List[Tuple[str, str]] = []  # (message, fate)
    annotations: List[Any] = []  # what MMDetection gets in skip mode
    used = Counter()
    for i, ann in enumerate(raw['annotations']):
        ann_id = ann.get('id', f'#{i}') if isinstance(ann, dict) else f'#{i}'
        found = _annotation_problem(ann, images, cats, with_mask)
        if found is None:
            annotations.append(ann)
            if not ann.get('ignore'):
                used[cats[ann['category_id']]['name']] += 1
            continue
        reason, fate = found
        indexable = isinstance(ann, dict) and all(_hashable(ann.get(k)) for k in _INDEX_KEYS)
        where = ''
        if indexable and ann['image_id'] in images:
            where = f' (image {images[ann["image_id"]]["file_name"]!r})'
        problems.append((f'annotation id {ann_id}{where}: {reason}', fate))
        if fate != FATAL:
            annotations.append(ann)
        elif indexable:
            annotations.append(dict(ann, ignore=True))  # the parser's own "skip this one"

    if classes is not None:
        unused = {name: n for name, n in used.items() if name not in classes}
        if unused:
            print_log(f'{ann_file}: annotations of categories not in the config\'s classes are '
                      f'not used: {unused}', logger='current', level=logging.WARNING)
    if not problems:
        return raw
    if bad_annotations == 'skip' and all(f in (FATAL, UNUSED) for _, f in problems) \
            and len(problems) == len(raw['annotations']):
        raise AnnotationError(
            f'{ann_file}: none of its {len(problems)} annotation(s) is usable (another format?'
            f'), so bad_annotations=\'skip\' would train on backgrounds only:\n'
            f'{format_listing([p for p, _ in problems])}')
    if bad_annotations == 'error':
        listing = format_listing([p for p, _ in problems])
        raise AnnotationError(
            f'{ann_file}: {len(problems)} bad annotation(s):\n{listing}\nFix the file, '
            "or train on what MMDetection makes of them (each logged) with "
            "bad_annotations='skip' in the dataset config.")
    lines = []
    for fate in _FATES:
        listed = [p for p, f in problems if f == fate]
        if listed:
            lines.append(f'{len(listed)} {fate}:\n{format_listing(listed, len(listed))}')
    print_log(f"{ann_file}: {len(problems)} bad annotation(s) (bad_annotations='skip'):\n"
              + '\n'.join(lines), logger='current', level=logging.WARNING)
    cleaned = dict(raw)
    cleaned['annotations'] = annotations
    return cleaned


#: What pycocotools' index reads from every annotation.
_INDEX_KEYS = ('id', 'image_id', 'category_id')


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str, float))


def _annotation_problem(ann: Any, images: Dict[Any, Any], cats: Dict[Any, Any],
                        with_mask: bool) -> Optional[Tuple[str, str]]:
    """``(reason, fate)`` of the first problem MMDetection's parser would meet, or None."""
    if not isinstance(ann, dict):
        return 'not an object', FATAL
    for key in _INDEX_KEYS:
        if not _hashable(ann.get(key)):
            return f'{key} {ann.get(key)!r} is missing or not a number or string', FATAL
    if ann['image_id'] not in images:
        return f'refers to unknown image id {ann["image_id"]!r}', UNUSED
    if ann.get('ignore'):
        return None  # marked by the file itself; MMDetection's parser skips it
    found = _box_problem(ann)
    if found is None and ann['category_id'] not in cats:
        found = f'refers to unknown category id {ann["category_id"]!r}', UNUSED
    if found is None:
        found = _segmentation_problem(ann.get('segmentation'), with_mask)
    return found


def _dataset_classes(ds_cfg: Any, scope: Optional[str]) -> Optional[Tuple[str, ...]]:
    if not isinstance(ds_cfg, dict):
        return None
    meta = ds_cfg.get('metainfo')
    if isinstance(meta, dict) and meta.get('classes'):
        return tuple(meta['classes'])
    if isinstance(ds_cfg.get('classes'), (list, tuple)) and ds_cfg['classes']:
        return tuple(ds_cfg['classes'])  # e.g. ImageFolderDataset(classes=...)
    if isinstance(ds_cfg.get('dataset'), dict):  # RepeatDataset, ClassBalancedDataset...
        return _dataset_classes(ds_cfg['dataset'], scope)
    dtype = ds_cfg.get('type')
    if not isinstance(dtype, str):
        return getattr(dtype, 'METAINFO', {}).get('classes')
    from mmengine.registry import DATASETS
    registries = [DATASETS]
    if scope in ('mmdet', 'mmseg'):
        import importlib
        registries.insert(0, importlib.import_module(f'{scope}.registry').DATASETS)
    for registry in registries:
        cls = registry.get(dtype)
        if cls is not None:
            classes = getattr(cls, 'METAINFO', {}).get('classes')
            return tuple(classes) if classes else None
    return None


def _num_classes_keys(node: Any, path: str):
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f'{path}.{k}'
            if k == 'num_classes' and isinstance(v, int):
                yield sub, v
            elif k not in ('rpn_head', 'data_preprocessor', 'train_cfg', 'test_cfg'):
                yield from _num_classes_keys(v, sub)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _num_classes_keys(v, f'{path}.{i}')


def check_num_classes(cfg) -> None:
    """The model's ``num_classes`` must equal the number of the data set's classes.

    The classes come from the dataloader's ``dataset.metainfo.classes`` (or ``classes``) or
    the data set class's ``METAINFO``; data sets whose classes are only known after scanning
    the data (ImageFolder without ``classes``) are not checked here. The RPN head
    (class-agnostic) is skipped.

    Args:
        cfg: The full config.

    Raises:
        AnnotationError: naming both config keys and both numbers.
    """
    model = cfg.get('model')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        classes = _dataset_classes(loader.get('dataset'), cfg.get('default_scope'))
        if not classes:
            continue
        for path, n in _num_classes_keys(model, 'model'):
            if n != len(classes):
                raise AnnotationError(
                    f'{getattr(cfg, "filename", "config")}: {path} = {n} but '
                    f'{key}.dataset has {len(classes)} classes '
                    f'({", ".join(map(str, classes[:10]))}{" ..." if len(classes) > 10 else ""})'
                    f'; set {path}={len(classes)} or fix the data set\'s metainfo.classes.')
        return


# ---------------------------------------------------------------- image loading

def read_skip_ledger(path: Optional[str]) -> List[str]:
    """Lines of the skipped-images ledger (empty when there is none)."""
    if not path or not osp.isfile(path):
        return []
    with open(path) as f:
        return [line.rstrip('\n') for line in f if line.strip()]


def _image_bytes_problem(data: bytes) -> Optional[str]:
    if not data:
        return 'the file is empty'
    if data[:2] == b'\xff\xd8':
        # A JPEG ends with the EOI marker; decoders fill a cut-off image with grey silently.
        if b'\xff\xd9' not in data[-4096:]:
            return 'truncated JPEG (no end-of-image marker)'
    elif data[:8] == b'\x89PNG\r\n\x1a\n':
        if b'IEND' not in data[-64:]:
            return 'truncated PNG (no IEND chunk)'
    return None


def read_image(filename: str, flag: str = 'color', backend: Optional[str] = None,
               backend_args: Optional[dict] = None) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """Read and decode one image as the checked loader does.

    Args:
        filename: The file (any MMEngine file backend).
        flag: ``mmcv.imfrombytes``'s ``flag`` (``'color'``, ``'unchanged'``...).
        backend: ``mmcv.imfrombytes``'s decoder (``'cv2'``, ``'pillow'``...); None: mmcv's.
        backend_args: MMEngine file backend arguments.

    Returns:
        ``(image, None)``, or ``(None, what is wrong)`` for a missing, unreadable, empty,
        truncated (JPEG/PNG) or undecodable file.
    """
    try:
        data = fileio.get(filename, backend_args=backend_args)
    except FileNotFoundError:
        return None, 'the file does not exist'
    except OSError as e:
        return None, f'cannot be read ({e})'
    problem = _image_bytes_problem(data)
    if problem:
        return None, problem
    try:
        img = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception as e:  # the decoders raise many types for non-images
        return None, f'not a decodable image ({type(e).__name__}: {e})'
    if img is None or img.size == 0:
        return None, 'not a decodable image'
    return img, None


@register_transform()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file and the problem, or skips it on request.

    Takes all of :class:`mmcv.transforms.LoadImageFromFile`'s arguments plus:

    Args:
        on_error: ``'raise'`` (default): a missing, empty, truncated (JPEG/PNG) or undecodable
            file raises ``OSError`` naming it. ``'skip'``: the file is logged, appended to the
            run's skipped-images ledger and the transform returns ``None``, so MMEngine's
            ``BaseDataset`` substitutes another sample (training pipelines; a test-time
            pipeline cannot drop samples and MMEngine then stops).

    Attributes:
        skipped: Files this instance skipped (per process; the ledger gathers all processes).
    """

    def __init__(self, *args, on_error: str = 'raise', **kwargs) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"CheckedLoadImageFromFile: on_error must be 'raise' or 'skip', "
                             f'got {on_error!r}')
        super().__init__(*args, **kwargs)
        self.on_error = on_error
        self.skipped: List[str] = []

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']`` into ``results['img']`` (see the class docstring)."""
        filename = results['img_path']
        img, problem = read_image(filename, self.color_type, self.imdecode_backend,
                                  self.backend_args)
        if img is None:
            if self.on_error == 'raise':
                raise OSError(f'image {filename!r}: {problem}. Fix or remove it, or skip such '
                              "files (logged and counted) with on_error='skip' in the "
                              'CheckedLoadImageFromFile step of the train pipeline.')
            self.skipped.append(filename)
            print_log(f'Skipping image {filename!r}: {problem}', logger='current',
                      level=logging.WARNING)
            ledger = os.environ.get(SKIP_LEDGER_ENV)
            if ledger:
                with open(ledger, 'a') as f:
                    f.write(f'{filename}\t{problem}\n')
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, on_error={self.on_error!r})'


# ---------------------------------------------------------------- full decode check (opt-in)

class UnreadableImagesError(OSError):
    """The opt-in decode check (``--check-images``) found files that cannot be read."""


def _decoders(dataset: Any) -> Tuple[str, str]:
    """The decoders the dataset's pipeline uses for images and for label maps."""
    image, label = 'cv2', 'pillow'  # LoadImageFromFile's and mmseg LoadAnnotations' defaults
    for t in getattr(getattr(dataset, 'pipeline', None), 'transforms', []):
        backend = getattr(t, 'imdecode_backend', None)
        if backend is None:
            continue
        if isinstance(t, LoadImageFromFile):
            image = backend
        else:
            label = backend
    return image, label


def image_files(dataset: Any) -> Optional[List[Tuple[str, str]]]:
    """``(path, decoder)`` of every image file a data set reads, in its order.

    Images and label maps of MMEngine ``BaseDataset`` subclasses (COCO, segmentation) with the
    decoders of their pipeline's loaders; the samples of an ImageFolder data set (PIL); the
    members of wrappers (``ConcatDataset``, ``RepeatDataset``...).

    Args:
        dataset: A built data set.

    Returns:
        The list, or None when the data set's files cannot be listed.
    """
    from mmengine.dataset import BaseDataset
    if isinstance(getattr(dataset, 'datasets', None), (list, tuple)):
        parts = [image_files(d) for d in dataset.datasets]
        return None if any(p is None for p in parts) else [f for p in parts for f in p]
    if isinstance(dataset, BaseDataset):
        dataset.full_init()
        image, label = _decoders(dataset)
        files = []
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            files += [(info[k], b) for k, b in (('img_path', image), ('seg_map_path', label))
                      if info.get(k)]
        return files
    if isinstance(getattr(dataset, 'samples', None), list):  # ImageFolderDataset
        return [(path, 'pillow') for path, _ in dataset.samples]
    if getattr(dataset, 'dataset', None) is not None:  # RepeatDataset, ClassBalancedDataset
        return image_files(dataset.dataset)
    return None


def _check_chunk(chunk: List[Tuple[int, str, str]]) -> Tuple[int, List[Tuple[int, str]]]:
    bad = []
    for index, path, backend in chunk:
        problem = read_image(path, 'unchanged', backend)[1]
        if problem:
            bad.append((index, problem))
    return len(chunk), bad


def find_unreadable_images(files: Sequence[Tuple[str, str]], workers: Optional[int] = None,
                           progress: bool = True) -> List[Tuple[str, str]]:
    """Read and decode every file (as :func:`read_image` does) and return the failures.

    Args:
        files: ``(path, decoder)`` pairs (:func:`image_files`).
        workers: Processes to decode in (default: the CPUs this process may use); 1 decodes
            in this process.
        progress: Show MMEngine's progress bar on stdout.

    Returns:
        ``(path, what is wrong)`` for every file that cannot be used, in the order of
        ``files``.
    """
    workers = workers or len(os.sched_getaffinity(0))
    jobs = [(i, path, backend) for i, (path, backend) in enumerate(files)]
    # Chunks of up to 64 files: few round trips, a bar that still moves on small sets.
    size = max(1, min(64, len(jobs) // (4 * workers)))
    chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    bar = ProgressBar(len(jobs)) if progress and jobs else None
    bad: List[Tuple[int, str]] = []
    if workers <= 1 or len(chunks) <= 1:
        results: Any = map(_check_chunk, chunks)
        pool = None
    else:
        # fork: the workers need nothing but the decoders, and start in milliseconds.
        method = 'fork' if 'fork' in multiprocessing.get_all_start_methods() else None
        pool = multiprocessing.get_context(method).Pool(min(workers, len(chunks)))
        results = pool.imap_unordered(_check_chunk, chunks)
    try:
        for done, found in results:
            bad += found
            if bar is not None:
                bar.update(done)
    finally:
        if pool is not None:
            pool.terminate()
    if bar is not None:
        bar.file.write('\n')
    return [(files[i][0], problem) for i, problem in sorted(bad)]
