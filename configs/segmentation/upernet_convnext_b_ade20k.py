# UperNet, ConvNeXt-B-1K, ADE20K 512x512, 160k iterations; paper Table 4: 49.1 mIoU single-scale,
# 49.9 multi-scale + flip, 122M params, 1170 GFLOPs at 2048x512.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_b_ade20k.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_b_ade20k.py CKPT [--tta]
_base_ = './upernet_convnext_s_ade20k.py'

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.4, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]), auxiliary_head=dict(in_channels=512))
