# Cascade Mask R-CNN + FPN on a ConvNeXt backbone (ConvNeXt-T here; rows override it): the
# Mask R-CNN base with the paper's cascade heads.
_base_ = ['./mask_rcnn_convnext_fpn.py', './cascade_rcnn_heads.py']
# Popped, so the heads land in `model` and leave no key of their own behind.
model = _base_.pop('cascade_rcnn_heads')
