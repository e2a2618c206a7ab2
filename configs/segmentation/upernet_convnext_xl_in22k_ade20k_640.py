# UperNet, ConvNeXt-XL-22K, ADE20K 640x640, 160k iterations; paper Table 4: 53.6 mIoU single-scale,
# 54.0 multi-scale + flip, 391M params, 3335 GFLOPs at 2560x640.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_xl_in22k_ade20k_640.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_xl_in22k_ade20k_640.py CKPT [--tta]
_base_ = [
    '_base_/models/upernet_convnext.py', '_base_/datasets/ade20k_640.py',
    '_base_/schedules/adamw_160k.py', '_base_/default_runtime.py'
]

crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='xlarge',
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))

optim_wrapper = dict(
    type='OptimWrapper',  # the paper trained L/XL in fp32
    optimizer=dict(lr=8e-5),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=12))
