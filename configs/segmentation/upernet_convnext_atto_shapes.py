# Demo: UperNet on ConvNeXt-atto, trained from scratch on the synthetic shapes set in the ADE20K
# layout (python tools/data/make_shapes.py --layouts ade --easy, the demo's scenes). Slim heads
# (64-channel UperNet, 32-channel auxiliary FCN) and 128 px crops: about 0.35 s per iteration of
# batch 8 on one CPU thread, so the 400 iterations take about 2.5 minutes.
# Same test protocol as the paper's rows: sliding window (crop 128, stride 85) by default,
# multi-scale + flip with tools/test.py --tta.
#   python tools/train.py configs/segmentation/upernet_convnext_atto_shapes.py
# The backbone starts from scratch (init_cfg=None). To start from a pretrained one, replace
# the None (`_delete_`) with a Pretrained init; the keys are new, hence --allow-new-keys:
#   python tools/train.py configs/segmentation/upernet_convnext_atto_shapes.py --allow-new-keys \
#       --cfg-options model.backbone.init_cfg._delete_=True \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '_base_/models/upernet_convnext.py', '_base_/datasets/shapes_ade.py',
    '_base_/schedules/demo_400it.py', '_base_/default_runtime.py'
]

crop_size = _base_.crop_size  # 128 px
num_classes = 4  # background, circle, square, triangle
# The background is ~80% of the pixels: weighed down so the shapes count (docs/configs.md).
class_weight = [0.2, 1.0, 1.0, 1.0]
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='atto', drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(
        in_channels=[40, 80, 160, 320], channels=64, num_classes=num_classes,
        loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(
        in_channels=160, channels=32, num_classes=num_classes,
        loss_decode=dict(class_weight=class_weight)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(85, 85)))

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=200, max_keep_ckpts=2))
# Same seed, same run (on the same machine and thread count); unseeded runs spread widely.
randomness = dict(seed=0)
