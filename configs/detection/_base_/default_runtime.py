# Runtime shared by every detection config: MMDetection's scope on the dense runtime.
_base_ = '../../_base_/dense_runtime.py'
default_scope = 'mmdet'

default_hooks = dict(
    checkpoint=dict(interval=1),
    # tools/test.py --show-dir turns drawing on.
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False)

visualizer = dict(type='DetLocalVisualizer', vis_backends=_base_.vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
