# Cascade Mask R-CNN, ConvNeXt-S (ImageNet-1K), COCO 3x; paper Table 3: 51.9 box AP / 45.0 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_s_coco.py 8
_base_ = './cascade_convnext_t_coco.py'

model = dict(
    backbone=dict(arch='small', drop_path_rate=0.6, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224.pth')))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
