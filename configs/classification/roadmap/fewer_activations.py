# Roadmap row 11 (the paper's Table 10): step 'fewer_activations', 300 epochs: enhanced_recipe.py
# (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/fewer_activations.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='fewer_activations'))
