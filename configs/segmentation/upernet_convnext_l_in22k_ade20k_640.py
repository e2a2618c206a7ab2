# UperNet, ConvNeXt-L-22K, ADE20K 640x640, 160k iterations; paper Table 4: 53.2 mIoU single-scale,
# 53.7 multi-scale + flip, 235M params, 2458 GFLOPs at 2560x640.
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_convnext_l_in22k_ade20k_640.py 8
#   python tools/test.py configs/segmentation/upernet_convnext_l_in22k_ade20k_640.py CKPT [--tta]
_base_ = './upernet_convnext_b_in22k_ade20k_640.py'

model = dict(
    backbone=dict(arch='large', init_cfg=dict(
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth')),
    decode_head=dict(in_channels=[192, 384, 768, 1536]), auxiliary_head=dict(in_channels=768))
optim_wrapper = dict(type='OptimWrapper')  # the paper trained L/XL in fp32
