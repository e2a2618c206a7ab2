# Ablation the paper does not report: the "fewer activations" step (one activation per block)
# with ReLU instead of GELU, to see what GELU is worth once activations are few.
#   tools/dist_train.sh configs/classification/roadmap/fewer_activations_relu.py 8
_base_ = ['fewer_activations.py']
model = dict(backbone=dict(act_cfg=dict(type='ReLU')))
