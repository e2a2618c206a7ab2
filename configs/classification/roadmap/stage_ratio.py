# Roadmap row 3 (the paper's Table 10): step 'stage_ratio', 300 epochs: enhanced_recipe.py
# (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/stage_ratio.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='stage_ratio'))
