# ConvNeXt-pico on ImageNet-1K from scratch, the paper's 300-epoch recipe.
# Drop path for the V2-size presets is our choice (the paper trains them with FCMAE);
# the rest of the recipe is the paper's.
#   tools/dist_train.sh configs/classification/convnext_pico_in1k.py 8
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet_224.py',
    '_base_/schedules/in1k_300e.py', '_base_/default_runtime.py'
]
model = dict(backbone=dict(arch='pico', drop_path_rate=0.05))
