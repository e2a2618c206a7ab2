# Comparison row: Cascade Mask R-CNN (4conv1fc, GIoU), ResNet-50 (torchvision ImageNet-1K),
# COCO 3x; paper Table 3: 46.3 box / 40.1 mask AP. mask_rcnn_r50_coco.py (backbone, data,
# schedule, optimizer) with the cascade heads of the ConvNeXt rows.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
_base_ = ['./mask_rcnn_r50_coco.py', '_base_/models/cascade_rcnn_heads.py']

model = _base_.pop('cascade_rcnn_heads')
