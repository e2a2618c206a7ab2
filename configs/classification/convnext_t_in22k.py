# ConvNeXt-T pre-trained on ImageNet-22K: 90 epochs, drop path 0.0 (the paper's Appendix A.1); the
# other sizes derive from this one.
#   tools/dist_train.sh configs/classification/convnext_t_in22k.py 8
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet22k_224.py',
    '_base_/schedules/in22k_90e.py', '_base_/default_runtime.py'
]
num_classes = 21841
model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.0),
    head=dict(num_classes=num_classes),
    data_preprocessor=dict(num_classes=num_classes))
