# UperNet, ConvNeXt-S-1K, ADE20K 512x512, 160k iterations; paper Table 4: 48.7 mIoU single-scale,
# 49.6 multi-scale + flip, 82M params, 1027 GFLOPs at 2048x512.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_s_ade20k.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_s_ade20k.py CKPT [--tta]
_base_ = './upernet_convnext_t_ade20k.py'

model = dict(
    backbone=dict(arch='small', drop_path_rate=0.3, init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224.pth')))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
