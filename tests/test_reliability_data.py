"""Bad input gets a clear error naming the file and what is wrong, before training starts:
missing data, broken annotation files, unreadable images (fail-fast, or skipped and counted),
num_classes / arch / roadmap-step / checkpoint mistakes. Real files, real data sets, a real
Runner."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, TEST_DATA
from mmengine.config import Config
from mmengine.dataset import BaseDataset

import backbones  # noqa: F401
from backbones.datasets import CheckedCocoDataset, make_coco_split
from backbones.datasets.checks import (SKIP_LEDGER_ENV, AnnotationError, CheckedLoadImageFromFile,
                                       check_num_classes)

CLASSES = ('circle', 'square', 'triangle')


@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / 'coco'
    make_coco_split(str(root), 'train', 4, size=64)
    return root


def _dataset(root, **kwargs):
    kwargs.setdefault('ann_file', 'annotations/instances_train.json')
    return CheckedCocoDataset(data_root=str(root), data_prefix=dict(img='train/'),
                              metainfo=dict(classes=CLASSES), pipeline=[], **kwargs)


def _edit_annotations(root, edit):
    path = root / 'annotations' / 'instances_train.json'
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))
    return raw


def test_missing_data_root_and_annotation_file(tmp_path, coco_root):
    with pytest.raises(FileNotFoundError) as info:
        _dataset(tmp_path / 'shapes_missing')
    msg = str(info.value)
    assert 'dataset root not found' in msg and 'shapes_missing' in msg
    assert 'DATA_ROOT/annotations/instances_{train,val}.json' in msg  # the expected layout
    assert 'python tools/data/make_shapes.py --layouts coco' in msg  # the command for demo data

    with pytest.raises(FileNotFoundError, match=r"annotation file not found: .*instances_x\.json"):
        _dataset(coco_root, ann_file='annotations/instances_x.json')


def test_truncated_annotation_file(coco_root):
    path = coco_root / 'annotations' / 'instances_train.json'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # a half-copied file
    with pytest.raises(AnnotationError, match=r'instances_train\.json.*is not valid JSON'):
        _dataset(coco_root)


def test_bad_annotations_are_named_or_skipped_with_a_log(coco_root):
    good = len(json.loads((coco_root / 'annotations' / 'instances_train.json').read_text())
               ['annotations'])

    def add_bad(raw):
        first = raw['annotations'][0]
        base = dict(first, iscrowd=0)
        raw['annotations'] += [
            dict(base, id=9001, image_id=424242),
            dict(base, id=9002, category_id=77),
            dict(base, id=9003, bbox=[3, 4, 0, 10]),
            dict(base, id=9004, segmentation=[[1, 1, 5, 5]]),
            dict(base, id=9005, segmentation=[[1, 1, 2, 2, 3, 3]]),
            dict(base, id=9006, bbox=[1, 2, float('nan'), 4]),
        ]

    _edit_annotations(coco_root, add_bad)
    with pytest.raises(AnnotationError) as info:
        _dataset(coco_root)
    msg = str(info.value)
    assert 'instances_train.json: 6 bad annotation(s)' in msg
    for expected in ('annotation id 9001: refers to unknown image id 424242',
                     "annotation id 9002 (image '000000.png'): refers to unknown category id 77",
                     'annotation id 9003 (image ', 'is empty or degenerate (width or height',
                     'annotation id 9004 (image ', 'polygon with 4 coordinates',
                     'annotation id 9005 (image ', 'polygon is degenerate (zero area)',
                     'annotation id 9006 (image ', 'has NaN or infinite values',
                     "bad_annotations='skip'"):
        assert expected in msg, (expected, msg)

    ds = _dataset(coco_root, bad_annotations='skip')
    assert sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds))) == good


def test_config_classes_missing_from_the_file(coco_root):
    with pytest.raises(AnnotationError, match=r"classes \['hexagon'\] are not categories"):
        CheckedCocoDataset(data_root=str(coco_root), ann_file='annotations/instances_train.json',
                           data_prefix=dict(img='train/'), pipeline=[],
                           metainfo=dict(classes=('circle', 'hexagon')))


def test_missing_image_files_fail_fast_or_are_dropped(coco_root):
    os.remove(coco_root / 'train' / '000002.png')  # a half-copied image folder
    with pytest.raises(FileNotFoundError) as info:
        _dataset(coco_root)
    assert '1 of 4 images listed in' in str(info.value)
    assert '000002.png' in str(info.value)
    assert len(_dataset(coco_root, missing_images='skip')) == 3


def _broken_images(folder):
    folder.mkdir(exist_ok=True)
    import cv2
    img = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(folder / 'good.png'), img)
    cv2.imwrite(str(folder / 'good.jpg'), img)
    png = (folder / 'good.png').read_bytes()
    jpg = (folder / 'good.jpg').read_bytes()
    (folder / 'truncated.png').write_bytes(png[:len(png) // 2])
    (folder / 'truncated.jpg').write_bytes(jpg[:len(jpg) // 2])
    (folder / 'text.png').write_text('this is not an image\n')
    (folder / 'empty.jpg').write_bytes(b'')
    return {
        'truncated.png': 'truncated PNG (no IEND chunk)',
        'truncated.jpg': 'truncated JPEG (no end-of-image marker)',
        'text.png': 'not a decodable image',
        'empty.jpg': 'the file is empty',
        'missing.jpg': 'the file does not exist',
    }


def test_image_loader_fails_fast_naming_file_and_problem(tmp_path):
    bad = _broken_images(tmp_path / 'img')
    load = CheckedLoadImageFromFile()
    assert load(dict(img_path=str(tmp_path / 'img' / 'good.jpg')))['img'].shape == (16, 16, 3)
    for name, problem in bad.items():
        path = str(tmp_path / 'img' / name)
        with pytest.raises(OSError) as info:
            load(dict(img_path=path))
        assert f"image '{path}': {problem}" in str(info.value)
        assert "on_error='skip'" in str(info.value)


def test_image_loader_is_registered_for_mmdet_mmseg_and_mmengine():
    from mmdet.registry import TRANSFORMS as DET
    from mmengine.registry import TRANSFORMS as ROOT
    from mmseg.registry import TRANSFORMS as SEG
    for registry in (ROOT, DET, SEG):
        t = registry.build(dict(type='CheckedLoadImageFromFile', on_error='skip'))
        assert isinstance(t, CheckedLoadImageFromFile) and t.on_error == 'skip'
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        CheckedLoadImageFromFile(on_error='ignore')


class _PngToyDataset(BaseDataset):
    """The toy classifier's inputs read from PNG files through the checked loader."""

    def __init__(self, folder, **kwargs):
        self.folder = folder
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        names = sorted(os.listdir(self.folder)) + ['missing.jpg']
        return [dict(img_path=osp.join(self.folder, n), label=i % 2)
                for i, n in enumerate(names)]


def _to_inputs(results):
    img = torch.from_numpy(results['img']).permute(2, 0, 1).float() / 255
    return dict(inputs=img, label=results['label'])


def test_skip_policy_in_a_real_run_logs_and_counts_every_file(tmp_path, monkeypatch):
    sys.path.insert(0, TEST_DATA)
    import toy_modules  # noqa: F401
    from mmengine.runner import Runner
    bad = _broken_images(tmp_path / 'img')
    monkeypatch.delenv(SKIP_LEDGER_ENV, raising=False)
    dataset = dict(type=_PngToyDataset, folder=str(tmp_path / 'img'),
                   pipeline=[dict(type='CheckedLoadImageFromFile', on_error='skip'), _to_inputs])
    runner = Runner(
        model=dict(type='ToyClassifier', width=4), work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(batch_size=7, num_workers=0, dataset=dataset,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='SkippedImagesReportHook')],
        default_hooks=dict(checkpoint=None), randomness=dict(seed=0),
        experiment_name=f'skip_{os.getpid()}')
    runner.train()
    ledger = osp.join(runner.log_dir, 'skipped_images.txt')
    with open(ledger) as f:
        lines = f.read().splitlines()
    # Every bad file came up in the one epoch (7 files, batch 7, no shuffle) and was skipped;
    # the random substitutes can be bad files too, so a file may be skipped several times.
    assert {osp.basename(line.split('\t')[0]) for line in lines} == set(bad)
    log = open(osp.join(runner.log_dir, osp.basename(runner.log_dir) + '.log')).read()
    for name, problem in bad.items():
        assert f"Skipping image '{tmp_path}/img/{name}': {problem}" in log
        assert f'  {tmp_path}/img/{name}: {problem}' in log  # the final report lists it
    assert f'Skipped images: {len(bad)} unreadable file(s), skipped {len(lines)} time(s)' in log


def test_num_classes_must_match_the_classes():
    cfg = Config.fromfile(osp.join(REPO, 'configs/detection/mask_rcnn_convnext_atto_shapes.py'))
    check_num_classes(cfg)
    cfg.model.roi_head.bbox_head.num_classes = 80
    with pytest.raises(AnnotationError) as info:
        check_num_classes(cfg)
    assert 'model.roi_head.bbox_head.num_classes = 80 but train_dataloader.dataset has 3 ' \
           'classes (circle, square, triangle)' in str(info.value)
    # Classes from the data set class itself (ADE20K's 150) and lists of heads (Cascade).
    for name in ('segmentation/upernet_convnext_t_ade20k.py',
                 'detection/cascade_convnext_t_coco.py',
                 'segmentation/upernet_convnext_atto_shapes.py'):
        check_num_classes(Config.fromfile(osp.join(REPO, 'configs', name)))
    cfg = Config.fromfile(osp.join(REPO, 'configs/segmentation/upernet_convnext_t_ade20k.py'))
    cfg.model.decode_head.num_classes = 151
    with pytest.raises(AnnotationError, match=r'decode_head.num_classes = 151 .* 150 classes'):
        check_num_classes(cfg)


def test_unknown_arch_step_and_foreign_checkpoint(tmp_path):
    from mmdet.registry import MODELS
    with pytest.raises(ValueError, match=r"unknown arch 'tinny'; valid names: atto, .*tiny"):
        MODELS.build(dict(type='ConvNeXt', arch='tinny'))
    with pytest.raises(ValueError, match=r"unknown roadmap step 'patchify_stemm'"):
        MODELS.build(dict(type='ModernizedResNet', step='patchify_stemm'))
    femto = str(tmp_path / 'femto.pth')
    torch.save({'model': MODELS.build(dict(type='ConvNeXt', arch='femto')).state_dict()}, femto)
    with pytest.raises(ValueError, match=r'femto.pth.*downsample_layers.0.0.weight'):
        MODELS.build(dict(type='ConvNeXt', arch='atto', init_cfg=dict(
            type='Pretrained', checkpoint=femto))).init_weights()


def test_segmentation_data_missing_root_or_label_maps(tmp_path):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    from backbones.datasets import make_ade_split
    cfg = dict(type='CheckedBaseSegDataset', data_root=str(tmp_path / 'ade'),
               data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
               img_suffix='.jpg', seg_map_suffix='.png', metainfo=dict(classes=CLASSES),
               pipeline=[])
    with DefaultScope.overwrite_default_scope('mmseg'), \
            pytest.raises(FileNotFoundError) as info:
        DATASETS.build(cfg)
    assert 'dataset root not found' in str(info.value)
    assert 'make_shapes.py --layouts ade' in str(info.value)
    make_ade_split(str(tmp_path / 'ade'), 'train', 3, size=32)
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert len(DATASETS.build(cfg)) == 3
        label_maps = sorted((tmp_path / 'ade' / 'annotations' / 'training').iterdir())
        os.remove(label_maps[1])
        with pytest.raises(FileNotFoundError, match=r'1 of 3 images have no label map'):
            DATASETS.build(cfg)
