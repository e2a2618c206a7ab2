# Demo: Cascade Mask R-CNN (4conv1fc, GIoU) on ConvNeXt-atto, trained from scratch on the
# synthetic shapes set (python tools/data/make_shapes.py). Slim heads for 2 CPU cores: FPN 64
# channels, 300 proposals, 32 sampled RoIs per stage, 32-channel convs + 256-wide FC box heads,
# 2-conv mask head. Assumes 1 process x 8 images (auto_scale_lr rescales for more).
#   python tools/train.py configs/detection/cascade_convnext_atto_shapes.py
# The backbone starts from scratch (init_cfg=None). To start from a pretrained one, replace
# the None (`_delete_`) with a Pretrained init; the keys are new, hence --allow-new-keys:
#   python tools/train.py configs/detection/cascade_convnext_atto_shapes.py --allow-new-keys \
#       --cfg-options model.backbone.init_cfg._delete_=True \
#       model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
_base_ = [
    '_base_/models/cascade_mask_rcnn_convnext_fpn.py', '_base_/datasets/shapes_instance.py',
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
        # The base's three heads and stages are lists, which MMEngine replaces whole: they are
        # rebuilt from the base's own entries (target stds, IoUs, losses stay the base's) with
        # slim widths; 4 convs x 3 stages are the most expensive part on a CPU.
        bbox_head=[
            dict(head, in_channels=64, conv_out_channels=32, fc_out_channels=256,
                 num_classes=num_classes) for head in _base_.model.roi_head.bbox_head
        ],
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        # 32 sampled RoIs per stage (96 over the three; Mask R-CNN's demo samples 64), so the
        # demo fits in 15 minutes: 5.1 instead of 7.7 min (a third of it was mmcv's CPU
        # RoIAlign backward) for 15.7 / 18.3 box / mask AP instead of 17.0 / 18.7.
        rcnn=[dict(stage, sampler=dict(stage.sampler, num=32))
              for stage in _base_.model.train_cfg.rcnn]),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# Same seed, same run (on the same machine and thread count).
randomness = dict(seed=0)
