# Isotropic ConvNeXt-L (16x16 patchify stem, no downsampling) on ImageNet-1K, 300 epochs.
# Layer scale on; drop path 0.5.
#   tools/dist_train.sh configs/classification/convnext_iso_l_in1k.py 8
_base_ = './convnext_iso_s_in1k.py'
model = dict(backbone=dict(arch='large', drop_path_rate=0.5))
