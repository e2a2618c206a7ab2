"""Bad input gets a clear error naming the file and what is wrong, before training starts:
missing data, broken annotation files, unreadable images (fail-fast, or skipped and counted),
num_classes / arch / roadmap-step / checkpoint mistakes. Real files, real data sets, a real
Runner."""
import glob
import json
import os
import os.path as osp
import re
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, TEST_DATA, run_tool
from mmengine.config import Config

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
    # The layout this dataset's ann_file and data_prefix describe, and the command for demo data.
    assert f'{tmp_path}/shapes_missing/annotations/instances_train.json  (ann_file)' in msg
    assert 'python tools/data/make_shapes.py --layouts coco' in msg

    with pytest.raises(FileNotFoundError, match=r"annotation file not found: .*instances_x\.json"):
        _dataset(coco_root, ann_file='annotations/instances_x.json')


def _layout_line(path, key):
    return re.compile(rf'\n  {re.escape(path)} +\({re.escape(key)}\)\n')


@pytest.mark.slow
def test_missing_data_root_shows_the_layout_of_the_config_being_run(tmp_path):
    # The shapes detection config, its data moved: the message shows that config's file names
    # (instances_train.json, train/), not COCO's (instances_train2017.json, train2017/).
    moved = str(tmp_path / 'mydata')
    proc = run_tool(['tools/train.py', 'configs/detection/mask_rcnn_convnext_atto_shapes.py',
                     '--work-dir', str(tmp_path / 'work'),
                     '--cfg-options', f'train_dataloader.dataset.data_root={moved}/'], check=False)
    assert proc.returncode != 0
    msg = proc.stderr[proc.stderr.index(f"dataset root not found: '{moved}/'"):]
    assert _layout_line(f'{moved}/annotations/instances_train.json', 'ann_file').search(msg), msg
    assert _layout_line(f'{moved}/train/<images>', 'data_prefix.img').search(msg), msg
    assert '2017' not in msg and 'make_shapes.py --layouts coco' in msg

    # The other kinds of data set, built from their configs' own dataset settings.
    from mmengine.registry import DATASETS, DefaultScope
    for config, kind, lines in (
            ('detection/mask_rcnn_convnext_t_coco.py', 'coco',
             [('annotations/instances_train2017.json', 'ann_file'),
              ('train2017/<images>', 'data_prefix.img')]),
            ('segmentation/upernet_convnext_atto_shapes.py', 'ade',
             [('images/training/<name>.jpg', 'data_prefix.img_path'),
              ('annotations/training/<name>.png', 'data_prefix.seg_map_path')]),
            ('classification/convnext_atto_shapes.py', 'cls',
             [('train/<class>/<image>', 'data_root + split')])):
        cfg = Config.fromfile(osp.join(REPO, 'configs', config))
        ds_cfg = dict(cfg.train_dataloader.dataset, data_root=moved)
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')), \
                pytest.raises(FileNotFoundError) as info:
            DATASETS.build(ds_cfg)
        msg = str(info.value)
        assert msg.startswith(f"dataset root not found: '{moved}'"), msg
        for path, key in lines:
            assert _layout_line(osp.join(moved, path), key).search(msg), (config, msg)
        assert f'make_shapes.py --layouts {kind}' in msg


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


def test_skip_policy_in_a_real_run_logs_and_counts_every_file(tmp_path, monkeypatch):
    sys.path.insert(0, TEST_DATA)
    import toy_modules  # noqa: F401
    from mmengine.runner import Runner
    bad = _broken_images(tmp_path / 'img')
    monkeypatch.delenv(SKIP_LEDGER_ENV, raising=False)
    dataset = dict(type='PngFolderToy', folder=str(tmp_path / 'img'), extra=['missing.jpg'],
                   pipeline=[dict(type='CheckedLoadImageFromFile', on_error='skip'),
                             dict(type='ToToyInputs')])
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


# ---------------------------------------------------------------- the opt-in decode check

def _spoil(path, how):
    """Make ``path`` unreadable the way a broken copy or a bad disk does."""
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2] if how == 'truncate'
                else np.random.default_rng(0).bytes(len(data)))


@pytest.mark.slow
def test_check_images_lists_every_unreadable_file_before_training(tmp_path):
    from backbones.datasets import make_coco_split
    root = str(tmp_path / 'coco')
    make_coco_split(root, 'train', 6, size=64)
    make_coco_split(root, 'val', 3, size=64, seed=1)
    bad = {osp.join(root, 'train', '000004.png'): 'not a decodable image',
           osp.join(root, 'val', '000001.png'): 'truncated PNG (no IEND chunk)'}
    for path, problem in bad.items():
        _spoil(path, 'truncate' if 'truncated' in problem else 'random')
    options = [f'{k}.dataset.data_root={root}/' for k in ('train_dataloader', 'val_dataloader')]
    options.append(f'val_evaluator.ann_file={root}/annotations/instances_val.json')
    work = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', 'configs/detection/mask_rcnn_convnext_atto_shapes.py',
                     '--work-dir', work, '--check-images', '--cfg-options', *options],
                    check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert 'UnreadableImagesError: image check: 2 of 9 files cannot be read' in err, err[-3000:]
    for path, problem in bad.items():  # both, at once, before any iteration
        assert f'  {path}: {problem}' in err
    assert 'Epoch(train)' not in proc.stdout + err and not glob.glob(osp.join(work, '*.pth'))
    listing = glob.glob(osp.join(work, '*', 'unreadable_images.txt'))
    assert len(listing) == 1
    with open(listing[0]) as f:
        assert sorted(line.split('\t')[0] for line in f) == sorted(bad)


def test_check_images_is_opt_in():
    from backbones.engine import add_reliability_hooks
    for extra, expected in (({}, False), (dict(check_images=True), True)):
        cfg = Config.fromfile(osp.join(TEST_DATA, 'configs', 'toy_classifier.py'))
        cfg.merge_from_dict(extra)
        add_reliability_hooks(cfg)
        assert ('ImageCheckHook' in [h['type'] for h in cfg.custom_hooks]) == expected


def test_check_images_covers_segmentation_and_imagefolder_data(tmp_path):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS as SEG

    from backbones.datasets import (ImageFolderDataset, find_unreadable_images, image_files,
                                    make_ade_split, make_cls_split)
    make_ade_split(str(tmp_path / 'ade'), 'train', 3, size=32)
    label_map = sorted((tmp_path / 'ade' / 'annotations' / 'training').iterdir())[1]
    _spoil(label_map, 'random')  # a label map is read like an image
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = SEG.build(dict(
            type='CheckedBaseSegDataset', data_root=str(tmp_path / 'ade'),
            data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
            img_suffix='.jpg', seg_map_suffix='.png', metainfo=dict(classes=CLASSES),
            pipeline=[dict(type='CheckedLoadImageFromFile'), dict(type='LoadAnnotations')]))
    files = image_files(seg)
    assert len(files) == 6 and {b for _, b in files} == {'cv2', 'pillow'}  # the loaders' own
    found = find_unreadable_images(files, workers=2, progress=False)
    assert [p for p, _ in found] == [str(label_map)], found
    assert found[0][1].startswith('not a decodable image (UnidentifiedImageError')  # PIL's

    make_cls_split(str(tmp_path / 'cls'), 'train', 24, size=64, crop_size=32)  # every class
    cls = ImageFolderDataset(str(tmp_path / 'cls'), 'train')
    spoilt = cls.samples[2][0]
    _spoil(spoilt, 'truncate')
    files = image_files(cls)
    assert [p for p, _ in files] == [p for p, _ in cls.samples]
    assert find_unreadable_images(files, workers=1, progress=False) == \
        [(spoilt, 'truncated PNG (no IEND chunk)')]


@pytest.mark.slow
def test_check_images_splits_the_files_among_ranks(tmp_path):
    import cv2
    folder = tmp_path / 'img'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        cv2.imwrite(str(folder / f'{i:02d}.png'), rng.integers(0, 255, (16, 16, 3), np.uint8))
    bad = {str(folder / '03.png'): 'truncated PNG (no IEND chunk)',
           str(folder / '08.png'): 'not a decodable image'}
    for path, problem in bad.items():
        _spoil(path, 'truncate' if 'truncated' in problem else 'random')
    dataset = dict(type='PngFolderToy', folder=str(folder),
                   pipeline=[dict(type='CheckedLoadImageFromFile'), dict(type='ToToyInputs')])
    config = tmp_path / 'png_cfg.py'
    config.write_text(
        f"_base_ = [{osp.join(TEST_DATA, 'configs', 'toy_classifier.py')!r}]\n"
        f'train_dataloader = dict(dataset=dict(_delete_=True, **{dataset!r}))\n'
        f'val_dataloader = dict(dataset=dict(_delete_=True, **{dataset!r}))\n')
    proc = run_tool(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
                     str(tmp_path / 'work'), '--check-images'], check=False, timeout=400,
                    PORT=str(29700 + os.getpid() % 1000))
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'Image check: decoding 12 files (6 on each of 2 ranks)' in log, log[-3000:]
    # Each rank decoded its half; both report all the bad files (one in each half).
    assert log.count('UnreadableImagesError: image check: 2 of 12 files cannot be read') == 2
    for path, problem in bad.items():
        assert log.count(f'  {path}: {problem}') == 2
    assert 'Epoch(train)' not in log
