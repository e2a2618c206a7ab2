# Cascade Mask R-CNN, ConvNeXt-L (ImageNet-22K), COCO 3x; paper Table 3: 54.8 box AP / 47.6 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_l_in22k_coco.py 8
_base_ = './cascade_convnext_b_in22k_coco.py'

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
# fp32, as in the paper for L and XL.
optim_wrapper = dict(type='OptimWrapper', paramwise_cfg=dict(decay_rate=0.7))
