# ImageNet-22K pre-training (the paper's Appendix A.1): 90 epochs, 5 of warm-up, otherwise the IN-1K
# recipe, without EMA.
_base_ = ['in1k_300e.py']
max_epochs = 90
warmup_epochs = 5
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         eta_min=1e-6, convert_to_iter_based=True)
]
custom_hooks = []
