# Demo ablation: the shapes Mask R-CNN with every normalization layer of ConvNeXt-atto removed
# (use_norm=False), trained from scratch. On the shapes data this learns where the LayerNorm
# model stays near zero AP in the same 400 iterations; see the README's demo section.
#   python tools/train.py configs/detection/mask_rcnn_convnext_atto_no_norm_shapes.py
_base_ = './mask_rcnn_convnext_atto_shapes.py'

model = dict(backbone=dict(use_norm=False))
