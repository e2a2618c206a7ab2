# Roadmap row 5 (the paper's Table 10): step 'depthwise_conv', 300 epochs: enhanced_recipe.py
# (the ConvNeXt recipe) with this step's network.
#   tools/dist_train.sh configs/classification/roadmap/depthwise_conv.py 8
_base_ = ['enhanced_recipe.py']
model = dict(backbone=dict(step='depthwise_conv'))
