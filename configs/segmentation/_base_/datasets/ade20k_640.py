# ADE20K at 640x640 crops (the ImageNet-22K rows): ade20k_512.py with images scaled to 2560x640
# instead of 2048x512.
_base_ = './ade20k_512.py'
crop_size = (640, 640)


def _at_640(step):
    if 'scale' in step:
        return dict(step, scale=(2560, 640))
    return dict(step, crop_size=crop_size) if 'crop_size' in step else step


train_pipeline = [_at_640(step) for step in _base_.train_pipeline]
test_pipeline = [_at_640(step) for step in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
