# Roadmap row 5 (PAPER.md section 2): step 'depthwise_conv' with the ConvNeXt recipe,
# 300 epochs.
#   tools/dist_train.sh configs/classification/roadmap/depthwise_conv.py 8
_base_ = [
    '../_base_/models/convnext.py', '../_base_/datasets/imagenet_224.py',
    '../_base_/schedules/in1k_300e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='ModernizedResNet', step='depthwise_conv', drop_path_rate=0.1))
