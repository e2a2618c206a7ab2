# Demo: the demo's Swin Transformer (../_base_/demo_backbones.py: MMDetection's SwinTransformer,
# embed 32) pre-trained as ConvNeXt-atto is (convnext_atto_shapes.py): same crops, batch, epochs,
# schedule and EMA; only the backbone, the head and Swin's usual exemption of position tables and
# norms from weight decay change. Swin's last output is already LayerNorm-ed (its norm3), so the
# head is pooling and the linear layer. Its checkpoint (backbone.* keys) initialises the Swin
# rows of the shapes Mask R-CNN and UperNet (MMDetection's and MMSegmentation's Swin read the
# backbone.* keys of a Pretrained checkpoint themselves).
#   python tools/train.py configs/classification/swin_shapes.py
_base_ = ['./convnext_atto_shapes.py', '../_base_/demo_backbones.py']

model = dict(
    backbone=dict(_delete_=True, **dict(_base_.swin_embed32, type='mmdet.SwinTransformer')),
    head=dict(in_channels=_base_.demo_backbone_widths[-1], pre_norm=False))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=_base_.swin_no_decay_keys))
