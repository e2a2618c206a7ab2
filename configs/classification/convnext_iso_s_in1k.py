# Isotropic ConvNeXt-S (16x16 patchify stem, no downsampling) on ImageNet-1K, 300 epochs:
# convnext_t_in1k.py with the isotropic backbone (replaced whole: it takes other arguments).
# Layer scale off (the paper's Table 1); drop path 0.1.
#   tools/dist_train.sh configs/classification/convnext_iso_s_in1k.py 8
_base_ = './convnext_t_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True, type='ConvNeXtIsotropic', arch='small', drop_path_rate=0.1))
