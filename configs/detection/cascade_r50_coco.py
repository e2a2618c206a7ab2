# Comparison row: Cascade Mask R-CNN (4conv1fc, GIoU), ResNet-50 (torchvision ImageNet-1K),
# COCO 3x; paper Table 3: 46.3 box / 40.1 mask AP. Same heads and schedule as the ConvNeXt rows.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
_base_ = './cascade_convnext_t_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # MMDetection's R-50 settings: stem and first stage frozen, BN statistics frozen.
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))

# The Swin paper trained its R-50 baselines with the same AdamW recipe (lr 1e-4, wd 0.05), in
# fp32 and without layer decay.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
