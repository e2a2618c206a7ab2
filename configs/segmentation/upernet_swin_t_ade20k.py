# Comparison row: UperNet, MMSegmentation's Swin-T (ImageNet-1K), ADE20K 512x512, 160k
# iterations; paper Table 4: 44.5 mIoU single-scale, 45.8 multi-scale + flip, 60M params,
# 945 GFLOPs at 2048x512. upernet_convnext_t_ade20k.py (heads, data, schedule length) with the
# backbone and optimizer swapped for Swin's recipe (as in MMSegmentation's config): AdamW lr
# 6e-5, wd 0.01, no weight decay on norms and position tables, no layer decay, fp32.
# The checkpoint must be in MMSegmentation's Swin key format (upstream's converted file, or
# the official one through mmseg's tools/model_converters/swin2mmseg.py).
# Batch 16 = 8 GPUs x 2 images; auto_scale_lr rescales the lr for other batch sizes.
#   tools/dist_train.sh configs/segmentation/upernet_swin_t_ade20k.py 8
_base_ = './upernet_convnext_t_ade20k.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_tiny_patch4_window7_224_20220317-1cdeb081.pth'  # noqa: E501

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer', pretrain_img_size=224, embed_dims=96, patch_size=4,
        window_size=7, mlp_ratio=4, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
        strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True, qk_scale=None,
        patch_norm=True, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.3,
        use_abs_pos_embed=False, act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
