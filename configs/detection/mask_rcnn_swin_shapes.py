# Demo comparison row: the shapes Mask R-CNN (mask_rcnn_convnext_atto_shapes.py) on a Swin
# Transformer of similar cost (../_base_/demo_backbones.py: Swin-T's depths at a third of its
# width, 3.1M parameters against ConvNeXt-atto's 3.4M). Same data, schedule and optimizer; only
# the backbone, the neck's input widths and Swin's usual exemption of position tables and norms
# from weight decay change. From scratch as it stands; the demo starts it from
# configs/classification/swin_shapes.py (init_cfg Pretrained).
#   python tools/train.py configs/detection/mask_rcnn_swin_shapes.py
_base_ = ['./mask_rcnn_convnext_atto_shapes.py', '../_base_/demo_backbones.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.swin_embed32),
    neck=dict(in_channels=_base_.demo_backbone_widths))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_no_decay_keys))
