# UperNet, ConvNeXt-XL-22K, ADE20K 640x640, 160k iterations; paper Table 4: 53.6 mIoU single-scale,
# 54.0 multi-scale + flip, 391M params, 3335 GFLOPs at 2560x640.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_xl_in22k_ade20k_640.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_xl_in22k_ade20k_640.py CKPT [--tta]
_base_ = './upernet_convnext_l_in22k_ade20k_640.py'

model = dict(
    backbone=dict(arch='xlarge', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]), auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(optimizer=dict(lr=8e-5))
