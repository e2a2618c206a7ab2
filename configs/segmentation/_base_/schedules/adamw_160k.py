# The paper's ADE20K UperNet schedule: 160k iterations of batch 16 (8 GPUs x 2 images),
# AdamW (wd 0.05), linear warmup for 1500 iterations from 1e-6, then poly decay (power 1) to 0.
# Stage-wise layer decay 0.9 through our constructor (num_layers 6 for T, 12 for the others).
# auto_scale_lr rescales the lr linearly when GPUs x train_dataloader.batch_size is not 16.
max_iters = 160000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=12))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=max_iters)
]

auto_scale_lr = dict(enable=True, base_batch_size=16)
