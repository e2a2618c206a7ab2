# Roadmap row 1 (the paper's Table 10): ResNet-50 with the original 90-epoch recipe.
#   tools/dist_train.sh configs/classification/roadmap/resnet50.py 8
_base_ = [
    '../_base_/models/convnext.py', '../_base_/datasets/imagenet_224_plain.py',
    '../_base_/schedules/resnet_90e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(_delete_=True, type='ModernizedResNet', step='resnet50'),
    head=dict(label_smoothing=0.0),
    data_preprocessor=dict(mixup=None))
