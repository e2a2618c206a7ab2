# Runtime shared by the detection and segmentation configs; each task's default_runtime.py adds
# its scope, checkpoint interval, visualizer and logging.
# Importing `backbones` registers ConvNeXt, the layer-decay constructor and our datasets (also
# in mmseg's registries, where mmseg's own LayerDecayOptimizerConstructor would shadow ours).
custom_imports = dict(imports=['backbones'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Keep the last 3: a 3x ConvNeXt-XL run writes 36 checkpoints of ~1.6 GB each otherwise.
    checkpoint=dict(type='CheckpointHook', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no GPU.
    # A rank that dies ends the job at once (torchrun stops the others); a rank that hangs
    # makes the others' collectives fail after this many seconds instead of waiting forever.
    dist_cfg=dict(backend='nccl', timeout=1800))

vis_backends = [dict(type='LocalVisBackend')]
log_level = 'INFO'
load_from = None
resume = False
