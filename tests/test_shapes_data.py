"""The synthetic shapes generator: determinism and the three layouts' conventions."""
import hashlib
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import run_tool
from pycocotools.coco import COCO

from backbones.datasets import (CLS_CLASSES, GENERATOR_FILE, SEG_CLASSES, SHAPES_CLASSES,
                                CheckedCocoDataset, check_dataset_paths, image_rng, make_shapes,
                                render_scene, scene_crops)

SMALL = dict(det_train=8, det_val=4, seg_train=5, seg_val=3, cls_train=9, cls_val=6)


def _digest(root):
    """Relative path -> sha256 of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    summary = make_shapes(root, seed=3, **SMALL)
    return root, summary


def test_same_seed_same_bytes(shapes, tmp_path):
    root, _ = shapes
    again = str(tmp_path / 'again')
    make_shapes(again, seed=3, **SMALL)
    assert _digest(again) == _digest(root)
    other = str(tmp_path / 'other')
    make_shapes(other, seed=4, layouts=('coco', ), **dict(SMALL, det_train=2, det_val=1))
    assert _digest(other)['coco/train/000000.png'] != _digest(root)['coco/train/000000.png']


def test_counts_do_not_change_shared_images(shapes, tmp_path):
    root, _ = shapes
    fewer = str(tmp_path / 'fewer')
    make_shapes(fewer, seed=3, layouts=('coco', ), **dict(SMALL, det_train=3))
    assert _digest(fewer)['coco/train/000002.png'] == _digest(root)['coco/train/000002.png']


def test_rerun_removes_stale_files(tmp_path):
    make_shapes(str(tmp_path), layouts=('cls', ), cls_train=6, cls_val=3)
    make_shapes(str(tmp_path), layouts=('cls', ), cls_train=3, cls_val=3)
    assert sum(len(files) for _, _, files in os.walk(tmp_path / 'cls' / 'train')) == 3


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_valid(shapes, split):
    root, summary = shapes
    ann_file = osp.join(root, 'coco', 'annotations', f'instances_{split}.json')
    coco = COCO(ann_file)
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPES_CLASSES)
    assert len(coco.getImgIds()) == summary['coco'][split]['images']
    assert len(coco.getAnnIds()) >= len(coco.getImgIds())  # at least one object per image
    for img in coco.loadImgs(coco.getImgIds()):
        assert osp.isfile(osp.join(root, 'coco', split, img['file_name']))
        assert (img['width'], img['height']) == (128, 128)
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert ann['iscrowd'] == 0 and ann['category_id'] in (1, 2, 3)
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in ann['segmentation'])
        mask = coco.annToMask(ann)
        assert mask.sum() == pytest.approx(ann['area'], rel=0.02, abs=2)
        x, y, w, h = ann['bbox']
        assert w >= 2 and h >= 2, 'degenerate box'
        assert x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
        ys, xs = np.nonzero(mask)
        # The box is the mask's extent.
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)


def test_scenes_have_several_disjoint_instances():
    counts = []
    for index in range(12):
        scene = render_scene(image_rng(0, 'coco', 'train', index))
        masks = np.stack([inst.mask for inst in scene.instances]).astype(int)
        # Occlusion: visible masks never overlap (later shapes cut earlier ones).
        assert masks.sum(0).max() <= 1
        assert all(m.sum() >= 30 for m in masks)  # fully hidden / sliver shapes are dropped
        counts.append(len(masks))
    assert max(counts) >= 3 and min(counts) >= 1


def _fill_variation(scene, instance):
    """Largest per-channel std of a shape's inner pixels after a 5x5 box blur (which averages
    the scene's pixel noise away but keeps fill blotches), or None for a thin shape."""
    blur = cv2.blur(scene.image.astype(np.float32), (5, 5))
    core = cv2.erode(instance.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    return float(blur[core].std(0).max()) if core.sum() >= 10 else None


def test_easy_scenes_are_upright_flat_and_whole():
    """``easy=True``: squares are axis-aligned rectangles, triangles widen from the apex down,
    every shape is whole (convex: nothing drawn over it) and filled with one colour plus the
    scene's noise; the default scenes are none of these."""
    easy_std, default_std = [], []
    for index in range(16):
        scene = render_scene(image_rng(0, 'coco', 'train', index), easy=True)
        assert scene.instances
        for instance in scene.instances:
            mask = instance.mask
            ys, xs = np.nonzero(mask)
            box = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            name = SHAPES_CLASSES[instance.category]
            if name == 'square':
                assert box.all()  # axis-aligned (a border can cut it, never rotate it)
            elif name == 'triangle':
                widths = box.sum(1)
                assert (np.diff(widths) >= -1).all()  # apex up
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            assert len(contours) == 1
            hull = np.zeros_like(mask, np.uint8)
            cv2.fillPoly(hull, [cv2.convexHull(contours[0])], 1)
            assert (hull.astype(bool) & ~mask).sum() <= 0.05 * mask.sum() + 4
            easy_std.append(_fill_variation(scene, instance))
        default = render_scene(image_rng(0, 'coco', 'train', index))
        default_std += [_fill_variation(default, inst) for inst in default.instances]
    easy_std, default_std = ([v for v in values if v is not None]
                             for values in (easy_std, default_std))
    # Flat colours against stripes and blotches.
    assert max(easy_std) < 3 and np.median(default_std) > 2 * max(easy_std)


def test_ade_layout_and_labels(shapes):
    root, _ = shapes
    for split, n in (('training', SMALL['seg_train']), ('validation', SMALL['seg_val'])):
        images = sorted(os.listdir(osp.join(root, 'ade', 'images', split)))
        labels = sorted(os.listdir(osp.join(root, 'ade', 'annotations', split)))
        assert len(images) == n and all(name.endswith('.jpg') for name in images)
        assert [osp.splitext(name)[0] for name in images] == [
            osp.splitext(name)[0] for name in labels]
        values = set()
        for name in labels:
            label = cv2.imread(osp.join(root, 'ade', 'annotations', split, name),
                               cv2.IMREAD_UNCHANGED)
            assert label.shape == (128, 128) and label.dtype == np.uint8
            values |= set(np.unique(label).tolist())
        # 0 = background (a class of its own in the demo configs), shapes are 1..K.
        assert 0 in values and values <= set(range(len(SEG_CLASSES)))
        assert len(values) > 1


def test_imagefolder_layout(shapes):
    root, _ = shapes
    for split, n in (('train', SMALL['cls_train']), ('val', SMALL['cls_val'])):
        classes = sorted(os.listdir(osp.join(root, 'cls', split)))
        assert classes == sorted(CLS_CLASSES)
        files = [osp.join(root, 'cls', split, c, f) for c in classes
                 for f in os.listdir(osp.join(root, 'cls', split, c))]
        assert len(files) == n
        assert all(cv2.imread(f).shape == (64, 64, 3) for f in files)


def test_crops_hold_their_shape():
    """A shape's crop is centred on it and holds all of it with some context; a background
    crop holds (almost) no shape."""
    for index in range(20):
        rng = image_rng(0, 'cls', 'train', index)
        scene = render_scene(rng)
        crops = scene_crops(scene, rng)
        assert len(crops) >= len(scene.instances)
        for instance, (label, (x0, y0, side)) in zip(scene.instances, crops):
            assert label == instance.category + 1
            ys, xs = np.nonzero(instance.mask)
            assert x0 <= xs.min() and xs.max() < x0 + side + 1
            assert y0 <= ys.min() and ys.max() < y0 + side + 1
        for label, (x0, y0, side) in crops[len(scene.instances):]:
            assert label == 0
            covered = np.zeros(scene.image.shape[:2], bool)
            for instance in scene.instances:
                covered |= instance.mask
            assert covered[y0:y0 + side, x0:x0 + side].mean() <= 0.05


def test_make_shapes_cli(tmp_path):
    out = tmp_path / 'cli'
    proc = run_tool(['tools/data/make_shapes.py', '--out', str(out), '--det-train', '3',
                     '--det-val', '2', '--layouts', 'coco', '--seed', '1'])
    assert 'coco' in proc.stdout
    with open(out / 'coco' / 'annotations' / 'instances_val.json') as f:
        assert len(json.load(f)['images']) == 2
    assert not (out / 'ade').exists()
    easy = tmp_path / 'easy'
    run_tool(['tools/data/make_shapes.py', '--out', str(easy), '--det-train', '3',
              '--det-val', '2', '--layouts', 'coco', '--seed', '1', '--easy'])
    # Same seed, other scenes: --easy reaches the renderer.
    assert _digest(str(easy / 'coco' / 'train')) != _digest(str(out / 'coco' / 'train'))
    # Each layout records what drew it (the demo reuses only easy data).
    for root, is_easy in ((out, False), (easy, True)):
        with open(root / 'coco' / GENERATOR_FILE) as f:
            assert json.load(f) == dict(seed=1, size=128, easy=is_easy, max_shapes=4)


def test_dataset_path_checks_name_the_path(shapes, tmp_path):
    root, _ = shapes
    missing_root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='dataset root not found.*nowhere'):
        check_dataset_paths(missing_root, osp.join(missing_root, 'a.json'))
    with pytest.raises(FileNotFoundError, match='annotation file not found.*instances_x.json'):
        check_dataset_paths(str(tmp_path), str(tmp_path / 'instances_x.json'))
    with pytest.raises(FileNotFoundError, match='image folder not found.*imgs'):
        check_dataset_paths(root, None, dict(img=osp.join(root, 'imgs')))
    check_dataset_paths('s3://bucket/coco', 's3://bucket/coco/a.json')  # remote: not checked


def test_checked_coco_dataset_loads_shapes(shapes):
    root, summary = shapes
    dataset = CheckedCocoDataset(
        data_root=osp.join(root, 'coco'), ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'), metainfo=dict(classes=SHAPES_CLASSES), test_mode=True)
    assert len(dataset) == summary['coco']['val']['images']
    with pytest.raises(FileNotFoundError, match='annotation file not found'):
        CheckedCocoDataset(data_root=osp.join(root, 'coco'), ann_file='annotations/none.json',
                           data_prefix=dict(img='val/'))
