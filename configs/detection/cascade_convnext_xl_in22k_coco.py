# Cascade Mask R-CNN, ConvNeXt-XL (ImageNet-22K), COCO 3x; paper Table 3: 55.2 box / 47.7 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_xl_in22k_coco.py 8
_base_ = './cascade_convnext_l_in22k_coco.py'

model = dict(
    backbone=dict(arch='xlarge', drop_path_rate=0.8, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
