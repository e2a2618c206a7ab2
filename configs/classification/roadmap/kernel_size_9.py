# Roadmap side variant: the kernel-size step with 9x9 depthwise convs.
#   tools/dist_train.sh configs/classification/roadmap/kernel_size_9.py 8
_base_ = ['kernel_size.py']
model = dict(backbone=dict(kernel_size=9))
