# Isotropic ConvNeXt-S (16x16 patchify stem, no downsampling) on ImageNet-1K, 300 epochs.
# Layer scale off (PAPER.md section 1); drop path 0.1.
#   tools/dist_train.sh configs/classification/convnext_iso_s_in1k.py 8
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet_224.py',
    '_base_/schedules/in1k_300e.py', '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='ConvNeXtIsotropic', arch='small', drop_path_rate=0.1))
