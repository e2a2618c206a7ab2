# Cascade Mask R-CNN, ConvNeXt-B (ImageNet-1K), COCO 3x; paper Table 3: 52.7 box AP / 45.6 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_b_coco.py 8
_base_ = './cascade_convnext_s_coco.py'

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.7, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.8))
