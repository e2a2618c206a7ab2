"""Bad input gets a clear error naming the file and what is wrong, before training starts:
missing data, broken annotation files, unreadable images (fail-fast, or skipped and counted),
num_classes / arch / roadmap-step / checkpoint mistakes. Real files, real data sets, a real
Runner."""
import contextlib
import glob
import json
import logging
import os
import os.path as osp
import re
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import REPO, TEST_DATA, run_tool
from mmengine.config import Config
from mmengine.logging import MMLogger

import backbones  # noqa: F401
from backbones.datasets import CheckedCocoDataset, checks, make_coco_split
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

    # Skip mode: only the NaN box (9006) is taken out; MMDetection's parser skips the unknown
    # ids and the empty box, and keeps the two polygon cases for LoadAnnotations.
    with captured_log() as records:
        ds = _dataset(coco_root, bad_annotations='skip')
    assert sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds))) == good + 2
    blocks = _skip_report(records)
    assert blocks == {checks.FATAL: [9006], checks.UNUSED: [9001, 9002, 9003],
                      checks.POLYGON: [9004], checks.EMPTY_POLYGON: [9005]}, blocks


@contextlib.contextmanager
def captured_log():
    """The messages MMEngine's current logger emits inside the block."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _skip_report(records):
    """``{fate: [annotation ids]}`` from the bad_annotations='skip' log."""
    report = [r for r in records if "(bad_annotations='skip')" in r]
    assert len(report) == 1, records
    blocks, fate = {}, None
    for line in report[0].splitlines()[1:]:
        if not line.startswith('  '):
            fate = re.fullmatch(r'\d+ (.*):', line).group(1)
            blocks[fate] = []
        else:
            blocks[fate].append(int(re.match(r'  annotation id (\d+)', line).group(1)))
    return blocks


def _column_major_rle(mask):
    """Uncompressed RLE (``counts`` a list), as COCO stores crowd regions."""
    flat = np.asarray(mask, np.uint8).flatten(order='F')
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return dict(counts=np.diff(np.concatenate([[0], changes])).tolist(), size=list(mask.shape))


def _real_coco_quirks(raw):
    """The cases of issue 31 plus real COCO's quirks, on the shapes images."""
    anns = raw['annotations']
    by_image = {}
    for ann in anns:
        by_image.setdefault(ann['image_id'], []).append(ann)
    ids = sorted(by_image)
    # Non-contiguous category ids, listed out of order (COCO's run 1..90 with gaps).
    remap = {1: 17, 2: 3, 3: 42}
    for cat in raw['categories']:
        cat['id'] = remap[cat['id']]
    for ann in anns:
        ann['category_id'] = remap[ann['category_id']]
    raw['categories'].reverse()
    next_id = max(a['id'] for a in anns) + 1
    # An image whose only box is under 1 px: MMDetection keeps it, background only.
    tiny = dict(by_image[ids[0]][0], id=next_id, bbox=[5.0, 5.0, 0.5, 8.0], area=4.0)
    anns[:] = [a for a in anns if a['image_id'] != ids[0]] + [tiny]
    # A zero-area polygon: the box is kept with an empty mask.
    by_image[ids[1]][0]['segmentation'] = [[1, 1, 2, 2, 3, 3]]
    # One bad polygon beside a good one: the box is kept with the good part's mask.
    by_image[ids[2]][0]['segmentation'].append([1, 1, 5, 5])
    # Only bad polygons: MMDetection keeps the box as an ignored region.
    by_image[ids[3]][0]['segmentation'] = [[1, 1, 5, 5]]
    # A crowd region in uncompressed RLE.
    crowd = np.zeros((raw['images'][0]['height'], raw['images'][0]['width']), bool)
    crowd[10:30, 20:44] = True
    anns.append(dict(id=next_id + 1, image_id=ids[4], category_id=42, iscrowd=1, area=480.0,
                     bbox=[20.0, 10.0, 24.0, 20.0], segmentation=_column_major_rle(crowd)))
    # Unknown image and category ids.
    anns.append(dict(by_image[ids[4]][0], id=next_id + 2, image_id=999))
    anns.append(dict(by_image[ids[4]][0], id=next_id + 3, category_id=5))
    # Images without annotations (COCO has about a thousand in train2017).
    for i in ids[5:]:
        anns[:] = [a for a in anns if a['image_id'] != i]


def _loaded(dataset, index):
    """Data info and what LoadAnnotations(with_mask=True) makes of it, as numpy arrays."""
    from mmdet.datasets.transforms import LoadAnnotations
    info = dataset.get_data_info(index)
    results = LoadAnnotations(with_bbox=True, with_mask=True)(
        dict(info, ori_shape=(info['height'], info['width'])))
    return info, dict(gt_bboxes=results['gt_bboxes'].numpy(),  # HorizontalBoxes
                      gt_bboxes_labels=results['gt_bboxes_labels'],
                      gt_ignore_flags=results['gt_ignore_flags'],
                      gt_masks=results['gt_masks'].to_ndarray())


@pytest.mark.parametrize('filter_cfg', [dict(filter_empty_gt=True, min_size=32), None],
                         ids=['paper', 'unfiltered'])
def test_skip_gives_mmdetections_images_and_instances(tmp_path, filter_cfg):
    from mmdet.datasets import CocoDataset
    root = tmp_path / 'coco'
    make_coco_split(str(root), 'train', 8, size=64)
    _edit_annotations(root, _real_coco_quirks)
    kwargs = dict(data_root=str(root), ann_file='annotations/instances_train.json',
                  data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES),
                  filter_cfg=filter_cfg, pipeline=[])
    theirs = CocoDataset(**kwargs)
    ours = CheckedCocoDataset(bad_annotations='skip', **kwargs)

    assert [ours.get_data_info(i)['img_id'] for i in range(len(ours))] == \
        [theirs.get_data_info(i)['img_id'] for i in range(len(theirs))]
    assert len(ours) == (8 if filter_cfg is None else 5)  # the background-only image is kept
    seen = Counter()
    for i in range(len(theirs)):
        (info, loaded), (ref_info, ref) = _loaded(ours, i), _loaded(theirs, i)
        assert info == ref_info, i
        for key in ref:
            np.testing.assert_array_equal(loaded[key], ref[key], err_msg=f'image {i}: {key}')
        seen['instances'] += len(ref['gt_bboxes'])
        seen['ignored'] += int(ref['gt_ignore_flags'].sum())
        seen['empty masks'] += sum(not m.any() for m in ref['gt_masks'])
        seen['background-only'] += not len(ref['gt_bboxes'])
    # The cases above were really there: the crowd and the all-bad-polygons boxes ignored, the
    # zero-area polygon's and the all-bad instance's (fake) masks empty, the tiny-box image
    # (and, unfiltered, the three without annotations) background only.
    assert seen['ignored'] == 2 and seen['empty masks'] == 2
    assert seen['background-only'] == (4 if filter_cfg is None else 1)
    assert seen['instances'] > 8


def test_skip_takes_out_only_what_mmdetection_stops_on(coco_root):
    from mmdet.datasets import CocoDataset
    path = coco_root / 'annotations' / 'instances_train.json'
    raw = json.loads(path.read_text())
    first = raw['annotations'][0]
    sibling = next(a for a in raw['annotations'][1:] if a['image_id'] == first['image_id'])
    fatal = [dict(first, id=9101, bbox=[1, 2, '30', 4]),   # TypeError in MMDetection's parser
             dict({k: v for k, v in first.items() if k != 'area'}, id=9102),   # KeyError
             dict(first, id=9103, segmentation='polygon')]   # no mask LoadAnnotations can read
    raw['annotations'] += fatal
    path.write_text(json.dumps(raw))
    kwargs = dict(data_root=str(coco_root), ann_file='annotations/instances_train.json',
                  data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES), pipeline=[])
    with pytest.raises((TypeError, KeyError)):
        CocoDataset(**kwargs)
    with captured_log() as records:
        ours = CheckedCocoDataset(bad_annotations='skip', **kwargs)
    assert _skip_report(records) == {checks.FATAL: [9101, 9102, 9103]}
    assert sibling['image_id'] == first['image_id']

    # The rest is MMDetection's on the file without them.
    raw['annotations'] = raw['annotations'][:-len(fatal)]
    path.write_text(json.dumps(raw))
    theirs = CocoDataset(**kwargs)
    assert len(ours) == len(theirs)
    for i in range(len(theirs)):
        assert ours.get_data_info(i) == theirs.get_data_info(i)


def test_skip_stops_when_nothing_usable_is_left_or_images_lack_sizes(coco_root):
    # A converter that wrote no areas: MMDetection stops on a KeyError; skipping every
    # annotation would train on backgrounds only, so this stops too, saying why.
    raw = _edit_annotations(coco_root, lambda raw: [a.pop('area') for a in raw['annotations']])
    with pytest.raises(AnnotationError, match=rf"none of its {len(raw['annotations'])} "
                       r"annotation\(s\) is usable .*train on backgrounds only"):
        _dataset(coco_root, bad_annotations='skip')
    _edit_annotations(coco_root, lambda raw: raw['images'][1].pop('height'))
    with pytest.raises(AnnotationError, match=r'instances_train\.json: image entry 1 lacks id or '
                       r'file_name or width or height'):
        _dataset(coco_root, bad_annotations='skip')


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
