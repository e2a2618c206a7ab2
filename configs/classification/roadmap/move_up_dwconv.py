# Roadmap row 8 (the paper's Table 10): step 'move_up_dwconv', 300 epochs: enhanced_recipe.py
# (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/move_up_dwconv.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='move_up_dwconv'))
