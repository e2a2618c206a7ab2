# ConvNeXt-S pre-trained on ImageNet-22K: convnext_t_in22k.py at another size, drop path 0.0
# (the paper's Appendix A.1).
#   tools/dist_train.sh configs/classification/convnext_s_in22k.py 8
_base_ = './convnext_t_in22k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.0))
