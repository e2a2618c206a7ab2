# Demo comparison row: the shapes UperNet (upernet_convnext_atto_shapes.py) on a classic ResNet
# of similar cost (../_base_/demo_backbones.py: ResNet-18 at half width, 2.8M parameters against
# ConvNeXt-atto's 3.4M, BatchNorm in training mode). Same data, schedule and optimizer (without
# ConvNeXt's layer-wise lr decay, which needs its layer ids). From scratch as it stands; the demo
# starts it from configs/classification/resnet_shapes.py (init_cfg Pretrained, prefix backbone.).
#   python tools/train.py configs/segmentation/upernet_resnet_shapes.py
_base_ = ['./upernet_convnext_atto_shapes.py', '../_base_/demo_backbones.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.resnet18_half),
    decode_head=dict(in_channels=_base_.demo_backbone_widths),
    auxiliary_head=dict(in_channels=_base_.demo_backbone_widths[2]))
optim_wrapper = dict(constructor='DefaultOptimWrapperConstructor',
                     paramwise_cfg=dict(_delete_=True))
