# Roadmap row 9 (the paper's Table 10): step 'kernel_size', 300 epochs: enhanced_recipe.py
# (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/kernel_size.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='kernel_size'))
