# Demo comparison row: the shapes UperNet (upernet_convnext_atto_shapes.py) on a Swin
# Transformer of similar cost (../_base_/demo_backbones.py: Swin-T's depths at a third of its
# width, 3.1M parameters against ConvNeXt-atto's 3.4M). Same data, schedule and optimizer
# (without ConvNeXt's layer-wise lr decay; with Swin's usual exemption of position tables and
# norms from weight decay). From scratch as it stands; the demo starts it from
# configs/classification/swin_shapes.py (init_cfg Pretrained).
#   python tools/train.py configs/segmentation/upernet_swin_shapes.py
_base_ = ['./upernet_convnext_atto_shapes.py', '../_base_/demo_backbones.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.swin_embed32),
    decode_head=dict(in_channels=_base_.demo_backbone_widths),
    auxiliary_head=dict(in_channels=_base_.demo_backbone_widths[2]))
optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, custom_keys=_base_.swin_no_decay_keys))
