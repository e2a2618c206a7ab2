# Cascade Mask R-CNN, ConvNeXt-T (ImageNet-1K), COCO 3x; paper Table 3: 50.4 box AP / 43.7 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/cascade_convnext_t_coco.py 8
_base_ = [
    '_base_/models/cascade_mask_rcnn_convnext_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    '_base_/schedules/adamw_3x.py', '_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    type='AmpOptimWrapper',  # the paper trained with mixed precision
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=6),
    optimizer=dict(lr=2e-4))
