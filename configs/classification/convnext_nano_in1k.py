# ConvNeXt-nano on ImageNet-1K from scratch: convnext_t_in1k.py at another size.
# Drop path for the V2-size presets is our choice (the paper trains them with FCMAE).
#   tools/dist_train.sh configs/classification/convnext_nano_in1k.py 8
_base_ = './convnext_t_in1k.py'
model = dict(backbone=dict(arch='nano', drop_path_rate=0.1))
