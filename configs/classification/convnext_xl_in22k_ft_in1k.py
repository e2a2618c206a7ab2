# ConvNeXt-XL: IN-22K weights fine-tuned on ImageNet-1K at 224, layer decay 0.8:
# convnext_b_in22k_ft_in1k.py at another size.
# Start from convnext_xl_in22k.py's checkpoint or the official convnext_xlarge_22k_224.pth.
# Drop path 0.4 for the fine-tuning is our choice.
#   tools/dist_train.sh configs/classification/convnext_xl_in22k_ft_in1k.py 8
_base_ = './convnext_b_in22k_ft_in1k.py'
model = dict(
    backbone=dict(arch='xlarge', drop_path_rate=0.4),
    init_cfg=dict(checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth'))
