# The synthetic shapes set in the ADE20K layout (python tools/data/make_shapes.py writes it to
# data/shapes/ade): 128 px images, label 0 = background, 1..3 = circle, square, triangle.
# ade20k_512.py's layout, test-time augmentation and metric; the background is a class here
# (reduce_zero_label=False): ignored, the demo's models stayed at chance (docs/configs.md).
_base_ = './ade20k_512.py'
dataset_type = 'CheckedBaseSegDataset'  # + clear errors for missing data
data_root = 'data/shapes/ade'
crop_size = (128, 128)
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[(0, 0, 0), (220, 20, 60), (0, 114, 230), (60, 180, 75)])
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    # 128 px like the val images, then flipped; no scale or photometric jitter (docs/configs.md).
    # Never padded with the ignore index, on which MMSegmentation 1.2.2's class-weighted
    # cross-entropy (the demo's loss) fails.
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]


# ADE20K's test pipeline at 128 px, with the background kept.
def _at_128(step):
    if step.type == 'Resize':
        return dict(step, scale=(128, 128))
    return dict(step, reduce_zero_label=False) if step.type == 'LoadAnnotations' else step


test_pipeline = [_at_128(step) for step in _base_.test_pipeline]
# What both loaders read (a `__` name, which MMEngine leaves out of the config).
__shapes = dict(type=dataset_type, data_root=data_root, img_suffix='.jpg', seg_map_suffix='.png',
                reduce_zero_label=False, metainfo=metainfo)
train_dataloader = dict(batch_size=8, num_workers=2,
                        dataset=dict(__shapes, pipeline=train_pipeline))
val_dataloader = dict(num_workers=2, dataset=dict(__shapes, pipeline=test_pipeline))
test_dataloader = val_dataloader
