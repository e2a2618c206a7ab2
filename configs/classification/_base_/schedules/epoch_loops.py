# The classification schedules' loops: epoch-based training validated every epoch; each
# schedule sets max_epochs.
train_cfg = dict(type='EpochBasedTrainLoop', val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
