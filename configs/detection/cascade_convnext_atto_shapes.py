# Demo: Cascade Mask R-CNN (GIoU) on ConvNeXt-atto, trained from scratch on the synthetic shapes set
# (python tools/data/make_shapes.py --easy for the demo's scenes). Slim heads for 2 CPU cores: FPN
# 64 channels, 300 proposals, 32 sampled RoIs per stage, the demo Mask R-CNN's 2-FC box head (256
# wide) in every stage, 2-conv mask head. Assumes 1 process x 8 images (auto_scale_lr rescales for
# more).
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
        # The demo's Mask R-CNN box head (two shared FCs of 256) in each of the three stages,
        # with the base's per-stage deltas and GIoU loss; a list, which MMEngine replaces
        # whole. The paper's 4conv1fc heads (the COCO configs) put 12 convs trained from
        # scratch behind the backbone, which 300 iterations do not train: 15.7 / 18.3 box /
        # mask AP against 23.6 / 24.3 with these (5.0 against 4.8 min).
        bbox_head=[
            dict(type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=256, roi_feat_size=7,
                 num_classes=num_classes, bbox_coder=head.bbox_coder,
                 reg_class_agnostic=head.reg_class_agnostic,
                 reg_decoded_bbox=head.reg_decoded_bbox, loss_cls=head.loss_cls,
                 loss_bbox=head.loss_bbox) for head in _base_.model.roi_head.bbox_head
        ],
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        # 32 sampled RoIs per stage (96 over the three; Mask R-CNN's demo samples 64), so the
        # demo fits in 15 minutes: 23.6 / 24.3 box / mask AP in 4.8 min; 64 per stage gave
        # 26.7 / 26.7 in 7.0 min (the extra time is mostly mmcv's CPU RoIAlign backward).
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
