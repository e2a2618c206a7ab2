# Demo schedule for the shapes set: adamw_160k.py (AdamW, stage-wise layer decay, warmup then
# poly decay to 0) cut to 400 iterations of batch 8 on one process, in fp32.
# auto_scale_lr rescales the lr when GPUs x train_dataloader.batch_size is not 8.
_base_ = './adamw_160k.py'
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=200)

# lr 3e-3: the best of the rates tried on the demo's scenes (docs/configs.md).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=3e-3),
                     paramwise_cfg=dict(num_layers=6))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=40),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=40, end=max_iters)
]

auto_scale_lr = dict(base_batch_size=8)
