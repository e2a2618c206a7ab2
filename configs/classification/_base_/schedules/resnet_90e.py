# The original ResNet-50 recipe (torchvision's, which gives the 76.13 of the roadmap's first
# row): 90 epochs, SGD momentum 0.9, lr 0.1 at batch 256 (8 x 32; rescaled to yours), wd 1e-4,
# divided by 10 every 30 epochs. No EMA, Mixup, label smoothing or stochastic depth.
_base_ = ['epoch_loops.py']
max_epochs = 90
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=30, gamma=0.1)]
auto_scale_lr = dict(enable=True, base_batch_size=256)
