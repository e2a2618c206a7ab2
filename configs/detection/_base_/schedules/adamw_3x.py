# The paper's COCO "3x" schedule: 36 epochs, lr x0.1 at epochs 27 and 33, AdamW with ConvNeXt's
# layer-wise lr decay (each row sets its decay rate, lr and depth: the paper's Table 3).
# Assumes 8 GPUs x 2 images = batch 16; auto_scale_lr rescales the lr linearly when the real
# batch (GPUs x train_dataloader.batch_size) differs, e.g. x0.5 on 4 GPUs.
max_epochs = 36
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    # The original ConvNeXt/Swin code warmed up for 500 iterations from ratio 0.001;
    # MMDetection 3.x uses 1000 iterations, which we follow.
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]

optim_wrapper = dict(
    type='AmpOptimWrapper',  # the paper trained with mixed precision (fp32 for L and XL)
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=12),
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))

auto_scale_lr = dict(enable=True, base_batch_size=16)
