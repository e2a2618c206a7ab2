# Demo: Cascade Mask R-CNN (GIoU) on ConvNeXt-atto, trained from scratch on the synthetic shapes
# set: the shapes Mask R-CNN (mask_rcnn_convnext_atto_shapes.py: data, slim FPN/RPN/mask head,
# schedule) with the cascade heads, slimmed too. Assumes 1 process x 8 images.
#   python tools/train.py configs/detection/cascade_convnext_atto_shapes.py
# To start from a pretrained backbone, see mask_rcnn_convnext_atto_shapes.py (same options).
_base_ = ['./mask_rcnn_convnext_atto_shapes.py', '_base_/models/cascade_rcnn_heads.py']

model = _base_.pop('cascade_rcnn_heads')
# In every stage the demo Mask R-CNN's box head (two shared FCs of 256) with the stage's deltas
# and GIoU loss: 4conv1fc heads from scratch do not train in the demo's budget (docs/configs.md).
model.roi_head.bbox_head = [
    dict(type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=256, roi_feat_size=7,
         num_classes=_base_.num_classes, bbox_coder=head.bbox_coder,
         reg_class_agnostic=head.reg_class_agnostic, reg_decoded_bbox=head.reg_decoded_bbox,
         loss_cls=head.loss_cls, loss_bbox=head.loss_bbox) for head in model.roi_head.bbox_head
]
# The demo's 300 proposals (not COCO's 2000), and 32 sampled RoIs per stage to fit its time.
model.train_cfg.rpn_proposal.max_per_img = 300
model.train_cfg.rcnn = [dict(stage, sampler=dict(stage.sampler, num=32))
                        for stage in model.train_cfg.rcnn]
