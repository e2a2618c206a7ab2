# Roadmap row 4 (PAPER.md section 2): step 'patchify_stem' with the ConvNeXt recipe,
# 300 epochs.
#   tools/dist_train.sh configs/classification/roadmap/patchify_stem.py 8
_base_ = [
    '../_base_/models/convnext.py', '../_base_/datasets/imagenet_224.py',
    '../_base_/schedules/in1k_300e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='ModernizedResNet', step='patchify_stem', drop_path_rate=0.1))
