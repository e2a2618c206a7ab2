# Demo comparison row: the shapes Mask R-CNN (mask_rcnn_convnext_atto_shapes.py) on a classic
# ResNet of similar cost (../_base_/demo_backbones.py: ResNet-18 at half width, 2.8M parameters
# against ConvNeXt-atto's 3.4M, BatchNorm in training mode). Same data, schedule and optimizer;
# only the backbone (and the neck's input widths) change. From scratch as it stands; the demo
# starts it from configs/classification/resnet_shapes.py (init_cfg Pretrained, prefix backbone.).
#   python tools/train.py configs/detection/mask_rcnn_resnet_shapes.py
_base_ = ['./mask_rcnn_convnext_atto_shapes.py', '../_base_/demo_backbones.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.resnet18_half),
    neck=dict(in_channels=_base_.demo_backbone_widths))
