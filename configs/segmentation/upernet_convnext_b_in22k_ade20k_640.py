# UperNet, ConvNeXt-B-22K, ADE20K 640x640, 160k iterations; paper Table 4: 52.6 mIoU single-scale,
# 53.1 multi-scale + flip, 122M params, 1828 GFLOPs at 2560x640.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_b_in22k_ade20k_640.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_b_in22k_ade20k_640.py CKPT [--tta]
# The 640 rows' own root (their data differs from upernet_convnext_b_ade20k.py's); L and XL
# derive from this one, each from the row before it.
_base_ = [
    '_base_/models/upernet_convnext.py', '_base_/datasets/ade20k_640.py',
    '_base_/schedules/adamw_160k.py', '_base_/default_runtime.py'
]

crop_size = _base_.crop_size
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='base', init_cfg=dict(
        type='Pretrained',
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]), auxiliary_head=dict(in_channels=512),
    test_cfg=dict(crop_size=crop_size, stride=(426, 426)))
