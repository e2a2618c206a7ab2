# IN-22K -> IN-1K fine-tuning (the paper's Appendix A.1): 30 epochs, AdamW lr 5e-5 at batch 512,
# wd 1e-8, layer-wise lr decay 0.8 (12 layers; the head is layer 13), head init scale 0.001,
# no warm-up, cosine; EMA validated beside the raw weights.
_base_ = ['epoch_loops.py']
max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='LearningRateDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=5e-5, betas=(0.9, 0.999), weight_decay=1e-8),
    paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12),
    accumulative_counts=1)
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-6,
         convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=True, base_batch_size=512)
custom_hooks = [dict(type='ModelEMAHook', decay=0.9999, evaluate=True)]
