# Roadmap row 4 (the paper's Table 10): step 'patchify_stem', 300 epochs: enhanced_recipe.py
# (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/patchify_stem.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='patchify_stem'))
