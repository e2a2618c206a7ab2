# Isotropic ConvNeXt-B (16x16 patchify stem, no downsampling) on ImageNet-1K, 300 epochs.
# Layer scale off (the paper's Table 1); drop path 0.2.
#   tools/dist_train.sh configs/classification/convnext_iso_b_in1k.py 8
_base_ = './convnext_iso_s_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.2))
