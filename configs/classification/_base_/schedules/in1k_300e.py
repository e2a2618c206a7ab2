# The paper's ImageNet-1K recipe (the paper's Appendix A.1): 300 epochs, 20 of linear warm-up, then
# cosine; AdamW lr 4e-3 at batch 4096 (rescaled to the effective batch), wd 0.05 except on 1-D
# parameters (norms, biases, layer scales, GRN), gradient accumulation 4 (8 x 128 x 4 = 4096);
# EMA 0.9999 of the weights, validated beside the raw weights every epoch.
_base_ = ['epoch_loops.py']
max_epochs = 300
warmup_epochs = 20
train_cfg = dict(max_epochs=max_epochs)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(flat_decay_mult=0.0),
    accumulative_counts=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=True, base_batch_size=4096)
custom_hooks = [dict(type='ModelEMAHook', decay=0.9999, evaluate=True)]
