"""Pictures of what the demo's models predict, drawn with MMDetection's and MMSegmentation's own
visualizers, and the trivial segmentation baseline the UperNet rows are read against."""
import glob
import os
import os.path as osp
from typing import List, Sequence

import mmcv
import numpy as np
from mmdet.apis import inference_detector, init_detector
from mmdet.visualization import DetLocalVisualizer
from mmseg.apis import inference_model, init_model
from mmseg.visualization import SegLocalVisualizer

from backbones.analysis.results import RunResult


def val_images(data: str, kind: str, count: int = 4) -> List[str]:
    """The first ``count`` validation images of the shapes data's COCO (``det``) or ADE
    (``seg``) layout."""
    pattern = (osp.join(data, 'coco', 'val', '*.png') if kind == 'det' else
               osp.join(data, 'ade', 'images', 'validation', '*.jpg'))
    files = sorted(glob.glob(pattern))[:count]
    if not files:
        raise FileNotFoundError(f'no validation images match {pattern}')
    return files


def _draw(visualizer, model, images: Sequence[str], infer, scale: int, **draw) -> np.ndarray:
    """Each image with the model's prediction drawn over it, the images in a row."""
    tiles = []
    for i, path in enumerate(images):
        image = mmcv.imread(path, channel_order='rgb')
        sample = infer(model, path)
        visualizer.add_datasample(f'image {i}', image, sample, draw_gt=False, show=False, **draw)
        tiles.append(visualizer.get_image())
    row = np.concatenate(tiles, axis=1)
    return mmcv.imrescale(row, scale, interpolation='nearest')


def draw_detections(config: str, checkpoint: str, images: Sequence[str], out_file: str,
                    score_thr: float = 0.3, scale: int = 3) -> str:
    """Predicted boxes and masks of a detector on ``images``, in one PNG.

    Args:
        config: The detector's config.
        checkpoint: Its trained checkpoint.
        images: Image files.
        out_file: The PNG written.
        score_thr: Detections below this score are not drawn.
        scale: Upscaling of the (small) images for viewing.

    Returns:
        ``out_file``.
    """
    model = init_detector(config, checkpoint, device='cpu')
    visualizer = DetLocalVisualizer(name=f'demo:{out_file}')
    visualizer.dataset_meta = model.dataset_meta
    picture = _draw(visualizer, model, images, inference_detector, scale,
                    pred_score_thr=score_thr)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    mmcv.imwrite(picture[..., ::-1], out_file)
    return out_file


def draw_segmentation(config: str, checkpoint: str, images: Sequence[str], out_file: str,
                      scale: int = 3) -> str:
    """Predicted label maps of a segmentor over ``images``, in one PNG (arguments as
    :func:`draw_detections`)."""
    model = init_model(config, checkpoint, device='cpu')
    visualizer = SegLocalVisualizer(name=f'demo:{out_file}', alpha=0.6)
    visualizer.dataset_meta = model.dataset_meta
    picture = _draw(visualizer, model, images, inference_model, scale)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    mmcv.imwrite(picture[..., ::-1], out_file)
    return out_file


def trivial_segmentation(data: str, num_classes: int, label: str) -> RunResult:
    """The mIoU of predicting the most frequent class (the background) for every pixel of the
    ADE layout's validation label maps: that class's IoU is its pixel share, every other
    class's is 0.

    Args:
        data: Root of the shapes data.
        num_classes: Classes of the label maps (background included).
        label: Row name in the matrix.

    Returns:
        A result with only ``miou`` (percent), for the matrix.
    """
    files = sorted(glob.glob(osp.join(data, 'ade', 'annotations', 'validation', '*.png')))
    if not files:
        raise FileNotFoundError(f'no validation label maps under {data}/ade/annotations')
    counts = np.zeros(256, np.int64)
    for path in files:
        counts += np.bincount(mmcv.imread(path, flag='unchanged').ravel(), minlength=256)
    counts = counts[:num_classes]
    miou = 100.0 * counts.max() / counts.sum() / num_classes
    return RunResult(name=label, work_dir='', config=None, metrics={}, values=dict(miou=miou),
                     train_time_s=None, iters=0, losses=[], evals=[])
