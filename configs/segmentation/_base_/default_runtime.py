# Runtime shared by every segmentation config: MMSegmentation's scope on the dense runtime,
# logged and checkpointed by iteration.
_base_ = '../../_base_/dense_runtime.py'
default_scope = 'mmseg'

default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=16000),
    # tools/test.py --show-dir turns drawing on and points the visualizer at the folder.
    visualization=dict(type='SegVisualizationHook'))

visualizer = dict(type='SegLocalVisualizer', vis_backends=_base_.vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)

# Multi-scale + flip testing: tools/test.py --tta wraps the model in this and swaps the test
# pipeline for the dataset config's `tta_pipeline`.
tta_model = dict(type='SegTTAModel')
