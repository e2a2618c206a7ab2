# The synthetic shapes set in the ADE20K layout (python tools/data/make_shapes.py writes it to
# data/shapes/ade): 128 px images, label 0 = background, 1..3 = circle, square, triangle.
# Unlike ADE's "other", the background is a class here (reduce_zero_label=False): with it
# ignored, every model tried (ConvNeXt-atto and MMSegmentation's ResNet-18 UperNet alike)
# stayed at the 3-class chance loss, and mIoU over the shapes alone says nothing about finding
# them (tools/data/README.md).
dataset_type = 'CheckedBaseSegDataset'  # + clear errors for missing data
data_root = 'data/shapes/ade'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[(0, 0, 0), (220, 20, 60), (0, 114, 230), (60, 180, 75)])
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    # Resized to 128 px like the val images (a no-op on the demo's data), then flipped. The
    # earlier scale jitter (1-2x, then a 128 crop) trained on shapes larger than the val ones,
    # and photometric jitter adds nothing to shapes of random colour: without them, each
    # UperNet row gained 1.9-3.6 mIoU at 200 iterations (one run each, README). The input is
    # never padded with the ignore index, on which MMSegmentation 1.2.2's class-weighted
    # cross-entropy (the demo's loss) fails.
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
                    [
                        dict(type='RandomFlip', prob=0., direction='horizontal'),
                        dict(type='RandomFlip', prob=1., direction='horizontal')
                    ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
