# Comparison row: Mask R-CNN, Swin-T (ImageNet-1K), COCO 3x; paper Table 3: 46.0 box / 41.6 mask.
# mask_rcnn_convnext_t_coco.py with the backbone and optimizer swapped for Swin's.
# Assumes 8 GPUs x 2 images (batch 16); the lr rescales with the real batch (auto_scale_lr).
_base_ = './mask_rcnn_convnext_t_coco.py'

checkpoint_file = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
        window_size=7, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.,
        attn_drop_rate=0., drop_path_rate=0.2, patch_norm=True, out_indices=(0, 1, 2, 3),
        with_cp=False,
        # The official Swin release file, renamed to MMDetection's keys on load.
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    neck=dict(in_channels=[96, 192, 384, 768]))

# Swin's own recipe: AdamW 1e-4, no weight decay on position tables and norms, mixed precision.
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }),
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
