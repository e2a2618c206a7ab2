"""MMEngine parts: the entry points' shared logic (:mod:`.cli`), the reliability hooks
(:mod:`.hooks`), resumable loops (:mod:`.resume`) and the ImageNet recipe's engine parts: model
EMA evaluated beside the raw weights (:mod:`.ema`) and lr scaling by the effective batch
(:mod:`.runner`). Augmentation and losses are timm's own (``backbones.datasets.imagefolder``,
``backbones.models.classifier``)."""
from backbones.checkpoint.io import (ALLOWED_GLOBALS, CorruptCheckpointError, UnsafeCheckpointError,
                                     load_checkpoint_file, plain_checkpoint,
                                     remove_stale_temporaries, save_checkpoint_atomic)
from .cli import (exit_distributed_rank, fetch_pretrained, finish_distributed, merge_cli,
                  prepare_distributed, revert_sync_bn_if_single, validate_cfg_options)
from .ema import ModelEMAHook
from .hooks import (CheckpointMatchHook, CheckpointMismatchError, ImageCheckHook,
                    NonFiniteLossError, NonFiniteLossHook, SkippedImagesReportHook,
                    StaleTemporariesHook, add_reliability_hooks)
from .resume import (ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop,
                     check_checkpoint_intact, find_resume_checkpoint, read_last_checkpoint,
                     seed_iteration, use_resumable_loops)
from .runner import EffectiveBatchRunner, effective_batch_size

__all__ = [
    'ALLOWED_GLOBALS', 'CorruptCheckpointError', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'plain_checkpoint', 'remove_stale_temporaries', 'save_checkpoint_atomic',
    'exit_distributed_rank', 'fetch_pretrained', 'finish_distributed', 'merge_cli',
    'prepare_distributed',
    'revert_sync_bn_if_single', 'validate_cfg_options',
    'CheckpointMatchHook', 'CheckpointMismatchError', 'ImageCheckHook', 'NonFiniteLossError',
    'NonFiniteLossHook',
    'SkippedImagesReportHook', 'StaleTemporariesHook', 'add_reliability_hooks',
    'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop', 'check_checkpoint_intact',
    'find_resume_checkpoint', 'read_last_checkpoint', 'seed_iteration', 'use_resumable_loops',
    'ModelEMAHook', 'EffectiveBatchRunner', 'effective_batch_size'
]
