# Demo: ConvNeXt-atto pre-trained on the synthetic shapes ImageFolder: 64-px crops cut from scenes
# like the detection ones (python tools/data/make_shapes.py --layouts cls --easy), 4 classes
# (background, circle, square, triangle), 3000 train / 500 val crops. The pre-training task looks
# like the downstream scenes, so what it learns transfers (tools/data/README.md). Same code path as
# the ImageNet configs (timm transforms, EMA beside the raw weights, the effective-batch lr rule) at
# a CPU-sized scale: batch 32, 8 epochs, crop and flip only, no Mixup or RandAugment (four classes
# and a few hundred steps leave little to regularise).
#   python tools/train.py configs/classification/convnext_atto_shapes.py
# Its checkpoint initialises the shapes detection/segmentation demos (model.backbone.init_cfg).
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet_224.py',
    '_base_/schedules/in1k_300e.py', '_base_/default_runtime.py'
]
data_root = 'data/shapes/cls'
num_classes = 4
img_size = 64
model = dict(
    backbone=dict(arch='atto', drop_path_rate=0.0),
    head=dict(num_classes=num_classes, label_smoothing=0.1),
    data_preprocessor=dict(num_classes=num_classes, mixup=None))

train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(
        data_root=data_root,
        transform=dict(_delete_=True, input_size=img_size, is_training=True,
                       scale=(0.6, 1.0), interpolation='bicubic', color_jitter=None,
                       auto_augment=None, re_prob=0.0)))
val_dataloader = dict(
    batch_size=40, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(data_root=data_root, transform=dict(input_size=img_size, crop_pct=1.0)))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=2e-3), accumulative_counts=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs, eta_min=1e-5,
         convert_to_iter_based=True)
]
# The lr above is for this batch of 32 on one process.
auto_scale_lr = dict(base_batch_size=32)
# A 0.9999 EMA needs ~10k steps; timm's decay warm-up suits a few hundred.
custom_hooks = [dict(type='ModelEMAHook', decay=0.999, warmup=True, evaluate=True)]
default_hooks = dict(logger=dict(interval=6), checkpoint=dict(max_keep_ckpts=2))
log_processor = dict(window_size=6)
randomness = dict(seed=0)
