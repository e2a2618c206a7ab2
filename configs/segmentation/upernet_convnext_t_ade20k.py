# UperNet, ConvNeXt-T-1K, ADE20K 512x512, 160k iterations; paper Table 4: 46.0 mIoU single-scale,
# 46.7 multi-scale + flip, 60M params, 939 GFLOPs at 2048x512.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_t_ade20k.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_t_ade20k.py CKPT [--tta]
# The model base is ConvNeXt-T (drop path 0.4) with heads for its widths; the S and B rows
# derive from this one, each from the row before it.
_base_ = [
    '_base_/models/upernet_convnext.py', '_base_/datasets/ade20k_512.py',
    '_base_/schedules/adamw_160k.py', '_base_/default_runtime.py'
]

model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(init_cfg=dict(
        type='Pretrained',
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=6))
