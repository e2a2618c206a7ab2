# ImageNet-1K in the ImageFolder layout (data/imagenet/{train,val}/<wnid>/*), with timm's
# transforms: the paper's training augmentation (RandAugment rand-m9-mstd0.5-inc1, bicubic,
# random erasing 0.25) and the usual 224 centre crop of a 256 resize (crop_pct 0.875) for val.
# Batch: 128 per process, 8 processes and 4 accumulation steps = the recipe's 4096 (the lr is
# rescaled to whatever effective batch you run; see auto_scale_lr in the schedules).
data_root = 'data/imagenet'
img_size = 224

train_transform = dict(
    input_size=img_size, is_training=True, auto_augment='rand-m9-mstd0.5-inc1',
    interpolation='bicubic', color_jitter=0.4, re_prob=0.25, re_mode='pixel', re_count=1)
val_transform = dict(input_size=img_size, is_training=False, interpolation='bicubic',
                     crop_pct=0.875)

train_dataloader = dict(
    batch_size=128, num_workers=10, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='train',
                 transform=train_transform))
# Validation reads like training, in order and without dropping the last batch.
val_dataloader = dict(
    train_dataloader, drop_last=False, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], split='val', transform=val_transform))
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
