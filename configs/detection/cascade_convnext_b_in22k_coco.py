# Cascade Mask R-CNN, ConvNeXt-B (ImageNet-22K), COCO 3x; paper Table 3: 54.0 box AP / 46.9 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_b_in22k_coco.py 8
_base_ = [
    '_base_/models/cascade_mask_rcnn_convnext_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    '_base_/schedules/adamw_3x.py', '_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))

optim_wrapper = dict(
    type='AmpOptimWrapper',  # the paper trained with mixed precision
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12),
    optimizer=dict(lr=1e-4))
