# The demo's comparison backbones, of ConvNeXt-atto's cost (3.4M parameters), shared by its
# Mask R-CNN and UperNet rows: MMDetection's and MMSegmentation's ResNet and SwinTransformer take
# the same arguments. Each is pre-trained by the classification sub-tool like ConvNeXt-atto
# (configs/classification/{resnet,swin}_shapes.py); their four stages are 32/64/128/256 wide.
# A classic ResNet: ResNet-18 at half width (32 base channels, 2.8M), BatchNorm in training mode.
resnet18_half = dict(
    type='ResNet',
    depth=18,
    stem_channels=32,
    base_channels=32,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None)
# A Swin Transformer: Swin-T's depths at a third of its width (embed 32, heads 1-2-4-8; 3.1M).
# Window 4, not 7: the demo's maps (16/8/4/2 px on 64-px crops, 32/16/8/4 on 128-px scenes)
# divide by 4, while 7 pads them up to 1.7-3x the tokens (2.4x slower pre-training).
swin_embed32 = dict(
    type='SwinTransformer',
    embed_dims=32,
    depths=[2, 2, 6, 2],
    num_heads=[1, 2, 4, 8],
    window_size=4,
    mlp_ratio=4,
    qkv_bias=True,
    drop_path_rate=0.,
    patch_norm=True,
    out_indices=(0, 1, 2, 3),
    init_cfg=None)
demo_backbone_widths = [32, 64, 128, 256]
# Swin's usual exemption of position tables and norms from weight decay.
swin_no_decay_keys = {
    'absolute_pos_embed': dict(decay_mult=0.),
    'relative_position_bias_table': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.)
}
