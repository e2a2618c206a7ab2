# ImageNet-22K (21841 classes) in the ImageFolder layout, for the 90-epoch pre-training. There is
# no official val split: hold out images in data/imagenet22k/val/<wnid>/ the same way.
_base_ = ['imagenet_224.py']
data_root = 'data/imagenet22k'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
