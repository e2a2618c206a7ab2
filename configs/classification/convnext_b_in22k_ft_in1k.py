# ConvNeXt-B: IN-22K weights fine-tuned on ImageNet-1K at 224 for 30 epochs, layer decay 0.8;
# the L and XL rows and the 384 rows derive from this one.
# Start from convnext_b_in22k.py's checkpoint or the official convnext_base_22k_224.pth.
# Drop path 0.2 for the fine-tuning is our choice.
#   tools/dist_train.sh configs/classification/convnext_b_in22k_ft_in1k.py 8
_base_ = [
    '_base_/models/convnext.py', '_base_/datasets/imagenet_224.py',
    '_base_/schedules/ft_30e.py', '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.2),
    head=dict(init_scale=0.001),
    # The whole 22K classifier but its 21841-way linear layer (shape mismatch: left at init).
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth'))
# 8 processes x 64 = the recipe's batch 512.
train_dataloader = dict(batch_size=64)
