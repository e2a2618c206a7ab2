# The synthetic shapes set in COCO format (python tools/data/make_shapes.py; --easy for the demo's
# scenes): 128x128 images, circles / squares / triangles. COCO's dataset class, pipelines and
# evaluator (coco_instance.py) at 128 px; sized for CPU demos: batch 8 on one process, images
# loaded in the main process (128-px PNGs decode faster than worker processes start on 2 cores).
_base_ = './coco_instance.py'
data_root = 'data/shapes/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle'),
                palette=[(220, 20, 60), (0, 114, 230), (60, 180, 75)])


def _at_128(step):
    return dict(step, scale=(128, 128)) if step.type == 'Resize' else step


train_pipeline = [_at_128(step) for step in _base_.train_pipeline]
test_pipeline = [_at_128(step) for step in _base_.test_pipeline]

# Replaced whole: no aspect-ratio batches, and the dataset's default annotation checks.
train_dataloader = dict(
    _delete_=True,
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=_base_.dataset_type, data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8), pipeline=train_pipeline,
        backend_args=_base_.backend_args))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
