# Cascade Mask R-CNN, ConvNeXt-L (ImageNet-22K), COCO 3x; paper Table 3: 54.8 box AP / 47.6 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_l_in22k_coco.py 8
_base_ = [
    '_base_/models/cascade_mask_rcnn_convnext_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    '_base_/schedules/adamw_3x.py', '_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.7,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))

optim_wrapper = dict(
    type='OptimWrapper',  # fp32, as in the paper for L and XL
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=12),
    optimizer=dict(lr=1e-4))
