# ConvNeXt-T on ImageNet-1K from scratch, the paper's 300-epoch recipe; the other sizes and
# the isotropic rows derive from this one.
# Drop path as in the paper (T/S/B/L = 0.1/0.4/0.5/0.5).
#   tools/dist_train.sh configs/classification/convnext_t_in1k.py 8
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet_224.py',
    '_base_/schedules/in1k_300e.py', '_base_/default_runtime.py'
]
model = dict(backbone=dict(arch='tiny', drop_path_rate=0.1))
