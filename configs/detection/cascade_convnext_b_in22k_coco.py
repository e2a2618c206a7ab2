# Cascade Mask R-CNN, ConvNeXt-B (ImageNet-22K), COCO 3x; paper Table 3: 54.0 box AP / 46.9 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_b_in22k_coco.py 8
_base_ = './cascade_convnext_b_coco.py'

model = dict(
    backbone=dict(drop_path_rate=0.6, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth')))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
