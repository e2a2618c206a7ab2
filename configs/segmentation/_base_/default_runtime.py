# Runtime shared by every segmentation config: MMSegmentation's scope plus our registrations.
default_scope = 'mmseg'
# Importing `backbones` registers ConvNeXt and the layer-decay constructor (also in mmseg's
# registries, where mmseg's own LayerDecayOptimizerConstructor would otherwise shadow ours).
custom_imports = dict(imports=['backbones'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # 10 checkpoints of an XL UperNet are ~15 GB: keep the last 3.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir turns drawing on and points the visualizer at the folder.
    visualization=dict(type='SegVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no GPU.
    # A rank that dies ends the job at once (torchrun stops the others); a rank that hangs
    # makes the others' collectives fail after this many seconds instead of waiting forever.
    dist_cfg=dict(backend='nccl', timeout=1800))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False

# Multi-scale + flip testing: tools/test.py --tta wraps the model in this and swaps the test
# pipeline for the dataset config's `tta_pipeline`.
tta_model = dict(type='SegTTAModel')
