# A CPU-sized schedule for the shapes demos: 400 iterations of batch 8, AdamW with a short
# warm-up and cosine decay, one evaluation and one checkpoint at the end.
max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min_ratio=0.01)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))

# Tuned for one process x 8 images; more processes scale the lr up linearly.
auto_scale_lr = dict(enable=True, base_batch_size=8)
