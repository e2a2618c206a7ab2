# Demo: Mask R-CNN on ConvNeXt-atto, trained from scratch on the synthetic shapes set (python
# tools/data/make_shapes.py --easy for the demo's scenes). Slim heads so 400 iterations of batch 8
# at 128 px take a few minutes on 2 CPU cores: FPN 64 channels, 300 proposals, 64 sampled RoIs,
# 256-wide FC, 2-conv mask head. Assumes 1 process x 8 images (auto_scale_lr rescales for more).
#   python tools/train.py configs/detection/mask_rcnn_convnext_atto_shapes.py
# The backbone starts from scratch (init_cfg=None). To start from a pretrained one, replace
# the None (`_delete_`) with a Pretrained init; the keys are new, hence --allow-new-keys:
#   python tools/train.py configs/detection/mask_rcnn_convnext_atto_shapes.py --allow-new-keys \
#       --cfg-options model.backbone.init_cfg._delete_=True \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '_base_/models/mask_rcnn_convnext_fpn.py', '_base_/datasets/shapes_instance.py',
    '_base_/schedules/demo_400it.py', '_base_/default_runtime.py'
]

num_classes = 3
model = dict(
    backbone=dict(arch='atto', drop_path_rate=0.0, init_cfg=None),
    neck=dict(in_channels=[40, 80, 160, 320], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # 128-px images: anchors of 16..256 px instead of COCO's 32..512.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# Same seed, same run (on the same machine and thread count).
randomness = dict(seed=0)
