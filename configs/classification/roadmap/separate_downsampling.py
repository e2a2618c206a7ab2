# Roadmap row 14 (the paper's Table 10): step 'separate_downsampling', 300 epochs:
# enhanced_recipe.py (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/separate_downsampling.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='separate_downsampling'))
