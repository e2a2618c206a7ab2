# Mask R-CNN, ConvNeXt-T (ImageNet-1K), COCO 3x; paper Table 3: 46.2 box AP / 41.7 mask AP.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
#   tools/dist_train.sh configs/detection/mask_rcnn_convnext_t_coco.py 8
# The model base's backbone is this row's: ConvNeXt-T-1K, drop path 0.4.
_base_ = [
    '_base_/models/mask_rcnn_convnext_fpn.py', '_base_/datasets/coco_instance_ms_crop.py',
    '_base_/schedules/adamw_3x.py', '_base_/default_runtime.py'
]

optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.95, num_layers=6))
