# UperNet, ConvNeXt-T-1K, ADE20K 512x512, 160k iterations; paper Table 4: 46.0 mIoU single-scale,
# 46.7 multi-scale + flip, 60M params, 939 GFLOPs at 2048x512.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_t_ade20k.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_t_ade20k.py CKPT [--tta]
_base_ = [
    '_base_/models/upernet_convnext.py', '_base_/datasets/ade20k_512.py',
    '_base_/schedules/adamw_160k.py', '_base_/default_runtime.py'
]

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    type='AmpOptimWrapper',  # the paper trained with mixed precision
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6))
