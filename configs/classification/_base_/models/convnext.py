# ConvNeXt classifier: backbone -> global average pooling -> LayerNorm -> linear, as in the paper.
# Mixup 0.8 / CutMix 1.0 with label smoothing 0.1 (timm's Mixup, soft-target loss).
num_classes = 1000
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ConvNeXt', arch='tiny', drop_path_rate=0.1, layer_scale_init_value=1e-6),
    head=dict(type='LinearClsHead', num_classes=num_classes),
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_classes=num_classes,
        mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode='batch',
                   label_smoothing=0.1)))
