# Demo: Cascade Mask R-CNN (4conv1fc, GIoU) on ConvNeXt-atto, trained from scratch on the
# synthetic shapes set (python tools/data/make_shapes.py). Slim heads for 2 CPU cores: FPN 64
# channels, 300 proposals, 64 sampled RoIs per stage, 32-channel convs + 256-wide FC box heads,
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


def _bbox_head(target_stds):
    return dict(
        type='Shared4Conv1FCBBoxHead',
        in_channels=64,
        conv_out_channels=32,  # 4 convs x 3 stages: the most expensive part on a CPU
        fc_out_channels=256,
        roi_feat_size=7,
        num_classes=num_classes,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=target_stds),
        reg_class_agnostic=False,
        reg_decoded_bbox=True,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=10.0))


def _rcnn_stage(iou):
    return dict(
        assigner=dict(
            type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
            match_low_quality=False, ignore_iof_thr=-1),
        sampler=dict(
            type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
            add_gt_as_proposals=True),
        mask_size=28,
        pos_weight=-1,
        debug=False)


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
        bbox_head=[
            _bbox_head([0.1, 0.1, 0.2, 0.2]),
            _bbox_head([0.05, 0.05, 0.1, 0.1]),
            _bbox_head([0.033, 0.033, 0.067, 0.067]),
        ],
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=[_rcnn_stage(0.5), _rcnn_stage(0.6), _rcnn_stage(0.7)]),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# Same seed, same run (on the same machine and thread count).
randomness = dict(seed=0)
