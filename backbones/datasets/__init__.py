from .checks import (AnnotationError, CheckedLoadImageFromFile, UnreadableImagesError,
                     check_coco_annotations, check_num_classes, expected_layout,
                     find_unreadable_images, image_files, read_image)
from .coco import CheckedCocoDataset, check_dataset_paths
from .imagefolder import ImageFolderDataset, build_timm_transform
from .segmentation import CheckedADE20KDataset, CheckedBaseSegDataset, check_seg_paths
from .shapes import (CLS_CLASSES, GENERATOR_FILE, SEG_CLASSES, SHAPES_CLASSES, SHAPES_METAINFO,
                     SHAPES_PALETTE, Instance, Scene, coco_annotation, image_rng, make_ade_split,
                     make_cls_split, make_coco_split, make_shapes, mask_to_polygons, render_scene,
                     scene_crops)

__all__ = [
    'AnnotationError', 'CheckedLoadImageFromFile', 'UnreadableImagesError',
    'check_coco_annotations', 'check_num_classes', 'check_seg_paths', 'expected_layout',
    'find_unreadable_images', 'image_files', 'read_image',
    'ImageFolderDataset', 'build_timm_transform',
    'CheckedCocoDataset', 'check_dataset_paths', 'CheckedBaseSegDataset', 'CheckedADE20KDataset',
    'SHAPES_CLASSES', 'SHAPES_PALETTE',
    'SHAPES_METAINFO', 'Instance', 'Scene', 'coco_annotation', 'image_rng', 'make_ade_split',
    'make_coco_split', 'make_cls_split', 'make_shapes', 'mask_to_polygons', 'render_scene',
    'scene_crops', 'SEG_CLASSES', 'CLS_CLASSES', 'GENERATOR_FILE'
]
