# ImageNet-1K with the classic augmentation only: random-resized crop and flip (bilinear), no
# RandAugment, colour jitter or random erasing; 32 images per process (8 x 32 = 256).
_base_ = ['imagenet_224.py']
train_dataloader = dict(
    batch_size=32,
    dataset=dict(transform=dict(
        _delete_=True, input_size=224, is_training=True, interpolation='bilinear',
        color_jitter=None, auto_augment=None, re_prob=0.0)))
val_dataloader = dict(dataset=dict(transform=dict(interpolation='bilinear')))
test_dataloader = val_dataloader
