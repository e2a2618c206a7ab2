# The shapes Mask R-CNN demo with a ResNet-18 backbone, for the end-to-end "it learns" test:
# ResNet-18 (BN) leaves 0 mAP within ~100 iterations (measured on 2 cores, lr 2e-3: bbox mAP
# 0.003 / 0.040 / 0.087 / 0.156 after 50 / 100 / 200 / 300 iterations).
_base_ = '../../../configs/detection/mask_rcnn_convnext_atto_shapes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]))

max_iters = 120
# No evaluation inside training (val_begin > max_iters): the test evaluates with tools/test.py.
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, val_begin=max_iters + 1)
# Short warm-up, then a constant lr: a short run learns more than under a decaying one.
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20)]
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(checkpoint=dict(interval=max_iters))
