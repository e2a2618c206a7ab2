# ConvNeXt-B: IN-22K -> IN-1K fine-tuning at 384 (the paper's 384 rows); the L and XL 384 rows
# derive from this one.
#   tools/dist_train.sh configs/classification/convnext_b_in22k_ft_in1k_384.py 8
_base_ = ['convnext_b_in22k_ft_in1k.py']
img_size = 384
# 8 processes x 32 x 2 accumulation steps = 512. The official 384 testing resizes to 384
# without a crop (crop_pct 1.0).
train_dataloader = dict(batch_size=32, dataset=dict(transform=dict(input_size=img_size)))
val_dataloader = dict(
    batch_size=32, dataset=dict(transform=dict(input_size=img_size, crop_pct=1.0)))
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=2)
