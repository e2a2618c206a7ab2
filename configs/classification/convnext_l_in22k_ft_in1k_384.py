# ConvNeXt-L: IN-22K weights fine-tuned on ImageNet-1K at 384, layer decay 0.8:
# convnext_b_in22k_ft_in1k_384.py at another size.
# Start from convnext_l_in22k.py's checkpoint or the official convnext_large_22k_224.pth.
# Drop path 0.3 for the fine-tuning is our choice.
#   tools/dist_train.sh configs/classification/convnext_l_in22k_ft_in1k_384.py 8
_base_ = './convnext_b_in22k_ft_in1k_384.py'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.3),
    init_cfg=dict(checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth'))
