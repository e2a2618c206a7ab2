# Runtime shared by every detection config: MMDetection's scope plus our registrations.
default_scope = 'mmdet'
# Importing `backbones` registers ConvNeXt, the layer-decay constructor and our datasets.
custom_imports = dict(imports=['backbones'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # A 3x ConvNeXt-XL run writes 36 checkpoints of ~1.6 GB each otherwise.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir turns drawing on.
    visualization=dict(type='DetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no GPU.
    # A rank that dies ends the job at once (torchrun stops the others); a rank that hangs
    # makes the others' collectives fail after this many seconds instead of waiting forever.
    dist_cfg=dict(backend='nccl', timeout=1800))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
