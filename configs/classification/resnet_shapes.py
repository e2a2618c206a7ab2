# Demo: the demo's ResNet (../_base_/demo_backbones.py: MMDetection's ResNet-18 at half width)
# pre-trained as ConvNeXt-atto is (convnext_atto_shapes.py): same crops, batch, epochs, optimizer,
# schedule and EMA; only the backbone and the head change. A classic ResNet classifier pools and
# goes straight to the linear layer (no LayerNorm). Its checkpoint (backbone.* keys) initialises
# the ResNet rows of the shapes Mask R-CNN and UperNet (init_cfg Pretrained, prefix='backbone.').
#   python tools/train.py configs/classification/resnet_shapes.py
_base_ = ['./convnext_atto_shapes.py', '../_base_/demo_backbones.py']

# The detection scope builds MMDetection's ResNet; MMSegmentation's has the same state-dict keys.
model = dict(
    backbone=dict(_delete_=True, **dict(_base_.resnet18_half, type='mmdet.ResNet')),
    head=dict(in_channels=_base_.demo_backbone_widths[-1], pre_norm=False))
