# A seconds-long run of the real Runner for entry-point tests (1 process or 2 with gloo).
custom_imports = dict(imports=['backbones', 'toy_modules'], allow_failed_imports=False)
model = dict(type='ToyClassifier', width=8)
train_dataloader = dict(
    batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ToyDataset', num=16, seed=0), collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyDataset', num=8, seed=1), collate_fn=dict(type='default_collate'))
val_evaluator = dict(type='ToyAccuracy')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=3, by_epoch=True)]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0, deterministic=True)
env_cfg = dict(dist_cfg=dict(backend='gloo', timeout=120))
log_level = 'INFO'
