# ConvNeXt-B on ImageNet-1K from scratch, the paper's 300-epoch recipe.
# Drop path as in the paper (T/S/B/L = 0.1/0.4/0.5/0.5).
#   tools/dist_train.sh configs/classification/convnext_b_in1k.py 8
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet_224.py',
    '_base_/schedules/in1k_300e.py', '_base_/default_runtime.py'
]
model = dict(backbone=dict(arch='base', drop_path_rate=0.5))
