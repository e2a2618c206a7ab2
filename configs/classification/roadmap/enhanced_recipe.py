# Roadmap row 2 (the paper's Table 10): step 'enhanced_recipe' with the ConvNeXt recipe,
# 300 epochs; rows 3-14 derive from this one, each with its own step.
#   tools/dist_train.sh configs/classification/roadmap/enhanced_recipe.py 8
_base_ = [
    '../_base_/models/convnext.py', '../_base_/datasets/imagenet_224.py',
    '../_base_/schedules/in1k_300e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        _delete_=True, type='ModernizedResNet', step='enhanced_recipe', drop_path_rate=0.1))
