"""Synthetic "shapes" data: one scene renderer, three dataset layouts.

The same renderer feeds the COCO instance-segmentation layout (detection demo and tests), the
ADE20K layout (semantic segmentation, background counted as a class) and an ImageFolder layout
of crops cut from such scenes (classification pre-training that transfers), so the three tasks
can be demonstrated and tested on a CPU in minutes. Every image gets its own random
generator seeded from ``(seed, layout, split, index)``: output is byte-identical for a seed,
and changing a count does not change the images that both runs share.

Scenes are deliberately not trivial: textured, noisy backgrounds with distractor lines, shapes
of varied size, colour and rotation, and occlusion (later shapes are drawn over earlier ones;
annotations describe only what stays visible). ``easy=True`` renders the same kind of scene
without the clutter (upright shapes in flat colours, no distractor lines, no occlusion), to
measure what the clutter costs a model.
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SHAPES_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle')
SHAPES_PALETTE: List[Tuple[int, int, int]] = [(220, 20, 60), (0, 114, 230), (60, 180, 75)]
#: mmdet ``metainfo`` for the COCO layout.
SHAPES_METAINFO = dict(classes=SHAPES_CLASSES, palette=SHAPES_PALETTE)
#: Classes of the ADE layout's label maps (0 = background, counted as a class) and of the
#: classification crops.
SEG_CLASSES: Tuple[str, ...] = ('background', ) + SHAPES_CLASSES
CLS_CLASSES: Tuple[str, ...] = SEG_CLASSES

_LAYOUT_CODES = dict(coco=1, ade=2, cls=3)
_SPLIT_CODES = dict(train=1, val=2)
#: Per-layout JSON file with the arguments the layout was generated with.
GENERATOR_FILE = 'generator.json'
_SHIFT = 4  # cv2 fixed-point bits: vertices are rasterised at 1/16 px precision
#: Rotations of the easy scenes' shapes: squares axis-aligned, triangles apex up.
UPRIGHT_ANGLES: Dict[str, float] = dict(circle=0.0, square=np.pi / 4, triangle=-np.pi / 2)


@dataclass
class Instance:
    """One visible shape of a scene.

    Args:
        category: Index into :data:`SHAPES_CLASSES`.
        mask: Visible pixels after occlusion, ``(H, W)`` bool.
    """
    category: int
    mask: np.ndarray


@dataclass
class Scene:
    """A rendered image and its visible instances, in drawing order.

    Args:
        image: ``(H, W, 3)`` uint8, RGB.
        instances: Visible shapes (fully or almost fully hidden ones are dropped).
    """
    image: np.ndarray
    instances: List[Instance] = field(default_factory=list)


def image_rng(seed: int, layout: str, split: str, index: int) -> np.random.Generator:
    """The random generator of one image (independent of how many images are made).

    Args:
        seed: The data set's seed.
        layout: ``'coco'``, ``'ade'`` or ``'cls'``.
        split: ``'train'`` or ``'val'``.
        index: Image index within the split.

    Returns:
        A numpy ``Generator`` seeded from all four values.
    """
    return np.random.default_rng([seed, _LAYOUT_CODES[layout], _SPLIT_CODES[split], index])


def shape_polygon(category: int, center: Sequence[float], size: float,
                  angle: float) -> np.ndarray:
    """Vertices of a shape, ``(K, 2)`` float ``(x, y)``.

    Args:
        category: Index into :data:`SHAPES_CLASSES`.
        center: ``(x, y)`` of the shape's centre.
        size: Diameter of the circle / circumscribed circle of the polygon, in pixels.
        angle: Rotation in radians (no effect on circles).

    Returns:
        The polygon (a circle is a 48-gon).
    """
    name = SHAPES_CLASSES[category]
    corners = {'circle': 48, 'square': 4, 'triangle': 3}[name]
    # Squares and triangles are a little larger than their circle so areas stay comparable.
    radius = size / 2 * {'circle': 1.0, 'square': 1.15, 'triangle': 1.3}[name]
    theta = angle + np.arange(corners) * 2 * np.pi / corners
    return np.stack([center[0] + radius * np.cos(theta), center[1] + radius * np.sin(theta)], 1)


def rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fill a polygon into a ``(height, width)`` bool mask."""
    mask = np.zeros((height, width), np.uint8)
    pts = np.round(polygon * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a random grid upsampled bicubically."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def render_background(rng: np.random.Generator, height: int, width: int,
                      lines: bool = True) -> np.ndarray:
    """A textured background: base colour, gradient, blotches and distractor lines (the
    scene's noise is added last, by :func:`render_scene`).

    Args:
        rng: The image's random generator.
        height: Image height.
        width: Image width.
        lines: Draw the distractor lines.

    Returns:
        ``(H, W, 3)`` float32 image in [0, 255] (before the final clip).
    """
    base = rng.uniform(40, 215, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * xx / width + np.sin(direction) * yy / height)[..., None]
    image = base + rng.uniform(-45, 45, 3) * ramp
    image = image + 30 * _smooth_noise(rng, height, width, int(rng.integers(3, 9)))[..., None]
    image = image.astype(np.float32)
    # Thin lines in random colours: edges that are not objects.
    for _ in range(int(rng.integers(2, 7)) if lines else 0):
        p0 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        cv2.line(image, p0, p1, tuple(float(c) for c in rng.uniform(0, 255, 3)),
                 int(rng.integers(1, 3)))
    return image


def _fill_texture(rng: np.random.Generator, height: int, width: int,
                  color: np.ndarray) -> np.ndarray:
    """The texture a shape is filled with: its colour modulated by stripes and blotches."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
    stripes = np.sin((np.cos(direction) * xx + np.sin(direction) * yy) * 2 * np.pi / period)
    amount = rng.uniform(0, 25)
    tex = color + (amount * stripes + 15 * _smooth_noise(rng, height, width, 6))[..., None]
    return tex.astype(np.float32)


def _shape_color(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour that stands out from the mean background colour (a few tries)."""
    mean = background.reshape(-1, 3).mean(0)
    color = rng.uniform(0, 255, 3)
    for _ in range(10):
        if np.abs(color - mean).sum() > 120:
            break
        color = rng.uniform(0, 255, 3)
    return color


def _has_hole(mask: np.ndarray) -> bool:
    # COCO polygons cannot describe holes; a shape drawn inside another would make one.
    _, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                    cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())


def _add_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    noisy = image + rng.normal(0, rng.uniform(3, 10), image.shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator,
                 size: int = 128,
                 min_shapes: int = 1,
                 max_shapes: int = 4,
                 min_area: int = 30,
                 min_visible: float = 0.3,
                 size_range: Tuple[float, float] = (0.12, 0.45),
                 easy: bool = False) -> Scene:
    """Render one scene with several (possibly overlapping) shapes.

    Shapes are placed one after another, each drawn over the earlier ones. A placement is
    retried (up to 20 times) if it would hide more than ``1 - min_visible`` of an earlier
    shape, leave it smaller than ``min_area`` pixels, or punch a hole in it, so every
    annotated object stays recognisable and representable by COCO polygons; a shape that
    cannot be placed is skipped.

    Args:
        rng: The image's random generator (see :func:`image_rng`).
        size: Image height and width.
        min_shapes: Fewest shapes attempted.
        max_shapes: Most shapes attempted.
        min_area: Smallest visible area (pixels) an annotated shape may keep.
        min_visible: Smallest visible fraction of an occluded shape.
        size_range: Shape diameter range as a fraction of ``size``.
        easy: Without the clutter: upright shapes (:data:`UPRIGHT_ANGLES`) in flat colours, no
            distractor lines, and no shape hiding any part of another (``min_visible`` is 1).
            Background gradient, blotches and noise stay.

    Returns:
        The scene; instance masks are the visible pixels.
    """
    if easy:
        min_visible = 1.0
    image = render_background(rng, size, size, lines=not easy)
    full_masks: List[np.ndarray] = []
    visible: List[np.ndarray] = []
    categories: List[int] = []
    for _ in range(int(rng.integers(min_shapes, max_shapes + 1))):
        for _attempt in range(20):
            category = int(rng.integers(len(SHAPES_CLASSES)))
            diameter = rng.uniform(*size_range) * size
            # Centres may sit near the border: some shapes are cut by the image edge.
            center = rng.uniform(diameter * 0.3, size - diameter * 0.3, 2)
            angle = (UPRIGHT_ANGLES[SHAPES_CLASSES[category]] if easy else
                     rng.uniform(0, 2 * np.pi))
            mask = rasterize(shape_polygon(category, center, diameter, angle), size, size)
            if mask.sum() < min_area:
                continue
            remaining = [v & ~mask for v in visible]
            if all(r.sum() >= max(min_area, min_visible * f.sum()) and not _has_hole(r)
                   for r, f in zip(remaining, full_masks)):
                break
        else:
            continue  # no acceptable placement for this shape
        visible = remaining + [mask]
        full_masks.append(mask)
        categories.append(category)
        color = _shape_color(rng, image)
        image[mask] = color if easy else _fill_texture(rng, size, size, color)[mask]
    image = _add_noise(rng, image)
    instances = [Instance(c, v) for c, v in zip(categories, visible) if v.sum() >= min_area]
    return Scene(image, instances)


def scene_crops(scene: Scene, rng: np.random.Generator,
                context: Tuple[float, float] = (1.2, 1.6),
                background_tries: int = 20) -> List[Tuple[int, Tuple[int, int, int]]]:
    """Square crops of a scene for the classification layout: one around every visible shape,
    labelled with its class + 1, and one of background (label 0) that holds at most 5% shape
    pixels when such a place is found.

    Args:
        scene: A rendered scene.
        rng: The scene's random generator (continued: crops follow the scene's draws).
        context: Range of the crop side over the shape's larger box side.
        background_tries: Random placements tried for the background crop (its side is
            1/8 to 3/8 of the scene's).

    Returns:
        ``(label, (x0, y0, side))`` per crop, in image pixels (may reach over the border).
    """
    crops = []
    for instance in scene.instances:
        ys, xs = np.nonzero(instance.mask)
        side = int(round(max(xs.max() - xs.min(), ys.max() - ys.min()) * rng.uniform(*context)))
        side = max(side, 8)
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        crops.append((instance.category + 1, (int(round(cx - side / 2)),
                                              int(round(cy - side / 2)), side)))
    height, width = scene.image.shape[:2]
    shapes = np.zeros((height, width), bool)
    for instance in scene.instances:
        shapes |= instance.mask
    for _ in range(background_tries):
        side = int(rng.integers(width // 8, width * 3 // 8))  # 16..47 px in 128-px scenes
        x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        if shapes[y0:y0 + side, x0:x0 + side].mean() <= 0.05:
            crops.append((0, (x0, y0, side)))
            break
    return crops


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> List[List[float]]:
    """Outer contours of a mask as COCO polygons ``[x1, y1, x2, y2, ...]``.

    OpenCV's contour runs through the centres of the boundary pixels; rasterised again it would
    lose about half of them. Each vertex is therefore moved half a pixel outwards (along the
    signs of its two edges' outward normals), onto the pixel corners, so the polygon covers
    the mask's own pixels (IoU about 0.97 on typical shapes).

    Args:
        mask: ``(H, W)`` bool mask; several components give several polygons.
        min_points: Contours with fewer vertices are dropped.

    Returns:
        A list of flat float lists (possibly empty).
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        pts = contour.reshape(-1, 2).astype(np.float64)
        if len(pts) < min_points:
            continue
        nxt = np.roll(pts, -1, 0)
        # Shoelace sign: which side of an edge is outside.
        orientation = np.sign(np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1])) or 1.0
        edges_in, edges_out = pts - np.roll(pts, 1, 0), nxt - pts

        def outward(d):
            # (dx, dy) -> (dy, -dx), flipped for clockwise contours
            return np.sign(np.stack([d[:, 1], -d[:, 0]], 1) * orientation)

        pts = pts + 0.5 + 0.5 * np.sign(outward(edges_in) + outward(edges_out))
        polygons.append([round(float(v), 1) for v in pts.reshape(-1)])
    return polygons


def coco_annotation(instance: Instance, image_id: int, ann_id: int,
                    min_area: int = 30) -> Optional[dict]:
    """COCO annotation of a visible instance, or None when nothing usable is left.

    ``area`` and ``bbox`` are computed from the polygons as pycocotools rasterises them, so
    ``COCO.annToMask(ann).sum() == ann['area']`` exactly and the box encloses that mask.

    Args:
        instance: A visible instance.
        image_id: COCO image id.
        ann_id: COCO annotation id.
        min_area: Instances whose polygons cover fewer pixels are dropped.

    Returns:
        The annotation dict (``category_id`` is ``instance.category + 1``).
    """
    height, width = instance.mask.shape
    polygons = mask_to_polygons(instance.mask)
    if not polygons:
        return None
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    area = int(mask_utils.area(rle))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    if area < min_area or w < 2 or h < 2:
        return None
    return dict(id=ann_id, image_id=image_id, category_id=instance.category + 1,
                segmentation=polygons, area=area, bbox=[x, y, w, h], iscrowd=0)


def _write_image(path: str, image_rgb: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.endswith('.jpg') else []
    if not cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params):
        raise OSError(f'could not write {path}')


def make_coco_split(out_dir: str, split: str, num_images: int, seed: int = 0,
                    size: int = 128, max_shapes: int = 4, easy: bool = False) -> dict:
    """Write ``out_dir/{split}/*.png`` and ``out_dir/annotations/instances_{split}.json``.

    Args:
        out_dir: The COCO root (``data/shapes/coco``).
        split: ``'train'`` or ``'val'``.
        num_images: Number of images.
        seed: Data-set seed.
        size: Image height and width.
        max_shapes: Most shapes per image.
        easy: Scenes without the clutter (:func:`render_scene`).

    Returns:
        The COCO dict that was written.
    """
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        scene = render_scene(image_rng(seed, 'coco', split, index), size, max_shapes=max_shapes,
                             easy=easy)
        image_id, file_name = index + 1, f'{index:06d}.png'
        _write_image(osp.join(img_dir, file_name), scene.image)
        images.append(dict(id=image_id, file_name=file_name, width=size, height=size))
        for instance in scene.instances:
            ann = coco_annotation(instance, image_id, len(annotations) + 1)
            if ann is not None:
                annotations.append(ann)
    coco = dict(
        info=dict(description=f'synthetic shapes ({split}), seed {seed}', version='1.0'),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='shape')
                    for i, name in enumerate(SHAPES_CLASSES)])
    with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    return coco


def make_ade_split(out_dir: str, split: str, num_images: int, seed: int = 0,
                   size: int = 128, max_shapes: int = 4, easy: bool = False) -> int:
    """Write an ADE20K-style split: ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png``.

    Labels: 0 is the background, class ``k`` of :data:`SHAPES_CLASSES` is ``k + 1``
    (:data:`SEG_CLASSES`). Unlike ADE20K's "other", the demo's configs count the background as
    a class (``reduce_zero_label=False``; why: ``tools/data/README.md``).

    Args:
        out_dir: The ADE root (``data/shapes/ade``).
        split: ``'train'`` or ``'val'`` (written as ``training`` / ``validation``).
        num_images: Number of images.
        seed: Data-set seed.
        size: Image height and width.
        max_shapes: Most shapes per image.
        easy: Scenes without the clutter (:func:`render_scene`).

    Returns:
        The number of images written.
    """
    ade_split = dict(train='training', val='validation')[split]
    img_dir = osp.join(out_dir, 'images', ade_split)
    ann_dir = osp.join(out_dir, 'annotations', ade_split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    for index in range(num_images):
        scene = render_scene(image_rng(seed, 'ade', split, index), size, max_shapes=max_shapes,
                             easy=easy)
        label = np.zeros((size, size), np.uint8)
        for instance in scene.instances:  # drawing order: later (visible) shapes win
            label[instance.mask] = instance.category + 1
        stem = f'shapes_{split}_{index:08d}'
        _write_image(osp.join(img_dir, stem + '.jpg'), scene.image)
        if not cv2.imwrite(osp.join(ann_dir, stem + '.png'), label):
            raise OSError(f'could not write {osp.join(ann_dir, stem + ".png")}')
    return num_images


def make_cls_split(out_dir: str, split: str, num_images: int, seed: int = 0,
                   size: int = 128, crop_size: int = 64, easy: bool = False) -> Dict[str, int]:
    """Write an ImageFolder split ``out_dir/{split}/<class>/*.png`` of crops cut from scenes
    like the detection ones (:func:`render_scene`, :func:`scene_crops`): every visible shape
    with some context, and a background crop per scene. Classes :data:`CLS_CLASSES`.

    The pre-training data look like the downstream scenes (textures, noise, distractor lines,
    occlusion, either contrast polarity), so what a classifier learns here transfers.

    Args:
        out_dir: The classification root (``data/shapes/cls``).
        split: ``'train'`` or ``'val'``.
        num_images: Number of crops (scenes are rendered until there are that many).
        seed: Data-set seed.
        size: Side of the scenes the crops are cut from.
        crop_size: Side of the written crops.
        easy: Cut from scenes without the clutter (:func:`render_scene`).

    Returns:
        Images per class name.
    """
    counts = {name: 0 for name in CLS_CLASSES}
    for name in CLS_CLASSES:
        os.makedirs(osp.join(out_dir, split, name), exist_ok=True)
    written, index = 0, 0
    while written < num_images:
        rng = image_rng(seed, 'cls', split, index)
        index += 1
        scene = render_scene(rng, size, easy=easy)
        # Reflect-pad so crops reaching over the border keep the scene's statistics.
        pad = size
        image = np.pad(scene.image, ((pad, pad), (pad, pad), (0, 0)), mode='reflect')
        for label, (x0, y0, side) in scene_crops(scene, rng):
            if written == num_images:
                break
            crop = image[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
            crop = cv2.resize(crop, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
            name = CLS_CLASSES[label]
            _write_image(osp.join(out_dir, split, name, f'{written:06d}.png'), crop)
            counts[name] += 1
            written += 1
    return counts


def make_shapes(out_dir: str = 'data/shapes',
                seed: int = 0,
                size: int = 128,
                det_train: int = 400,
                det_val: int = 60,
                seg_train: int = 400,
                seg_val: int = 60,
                cls_train: int = 3000,
                cls_val: int = 500,
                max_shapes: int = 4,
                layouts: Sequence[str] = ('coco', 'ade', 'cls'),
                easy: bool = False) -> Dict[str, dict]:
    """Write the synthetic data set in every requested layout under ``out_dir``.

    Each layout's folder (``coco/``, ``ade/``, ``cls/``) is emptied first, so a smaller run
    never leaves stale images from a larger one behind, and gets a :data:`GENERATOR_FILE`
    recording the seed, size, ``easy`` and ``max_shapes`` it was drawn with. Nothing else under
    ``out_dir`` is touched.

    Args:
        out_dir: Root folder.
        seed: Data-set seed (same seed, same bytes).
        size: Image height and width.
        det_train: COCO train images.
        det_val: COCO val images.
        seg_train: ADE training images.
        seg_val: ADE validation images.
        cls_train: ImageFolder train crops (all classes together).
        cls_val: ImageFolder val crops.
        max_shapes: Most shapes per detection/segmentation image.
        layouts: Any of ``'coco'``, ``'ade'``, ``'cls'``.
        easy: Scenes without the clutter (:func:`render_scene`), in every layout.

    Returns:
        A summary per layout (image and annotation counts, paths).
    """
    unknown = set(layouts) - set(_LAYOUT_CODES)
    if unknown:
        raise ValueError(f'unknown layouts {sorted(unknown)}; choose from {list(_LAYOUT_CODES)}')
    summary: Dict[str, dict] = {}
    for layout in layouts:
        root = osp.join(out_dir, layout)
        if osp.isdir(root):
            shutil.rmtree(root)
        if layout == 'coco':
            summary['coco'] = {
                split: dict(images=len(c['images']), annotations=len(c['annotations']))
                for split, c in ((s, make_coco_split(root, s, n, seed, size, max_shapes,
                                                     easy=easy))
                                 for s, n in (('train', det_train), ('val', det_val)))}
        elif layout == 'ade':
            summary['ade'] = dict(
                train=make_ade_split(root, 'train', seg_train, seed, size, max_shapes, easy=easy),
                val=make_ade_split(root, 'val', seg_val, seed, size, max_shapes, easy=easy))
        else:
            summary['cls'] = dict(
                train=make_cls_split(root, 'train', cls_train, seed, size, easy=easy),
                val=make_cls_split(root, 'val', cls_val, seed, size, easy=easy))
        summary[layout]['root'] = root
        # What drew these files, so a reader (the demo) can tell easy from cluttered scenes.
        with open(osp.join(root, GENERATOR_FILE), 'w') as f:
            json.dump(dict(seed=seed, size=size, easy=easy, max_shapes=max_shapes), f)
    return summary
