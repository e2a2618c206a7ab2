# ConvNeXt-L on ImageNet-1K from scratch: convnext_t_in1k.py at another size.
# Drop path as in the paper (T/S/B/L = 0.1/0.4/0.5/0.5).
#   tools/dist_train.sh configs/classification/convnext_l_in1k.py 8
_base_ = './convnext_t_in1k.py'
model = dict(backbone=dict(arch='large', drop_path_rate=0.5))
