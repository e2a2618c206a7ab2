from backbones.checkpoint.io import (ALLOWED_GLOBALS, CorruptCheckpointError, UnsafeCheckpointError,
                                     load_checkpoint_file, plain_checkpoint,
                                     remove_stale_temporaries, save_checkpoint_atomic)
from .hooks import (CheckpointMatchHook, CheckpointMismatchError, ImageCheckHook,
                    NonFiniteLossError, NonFiniteLossHook, SkippedImagesReportHook,
                    StaleTemporariesHook, add_reliability_hooks)
from .launch import (fetch_pretrained, finish_distributed, merge_cli, prepare_distributed,
                     revert_sync_bn_if_single, validate_cfg_options)
from .resume import (ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop,
                     check_checkpoint_intact, find_resume_checkpoint, read_last_checkpoint,
                     seed_iteration, use_resumable_loops)

__all__ = [
    'ALLOWED_GLOBALS', 'CorruptCheckpointError', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'plain_checkpoint', 'remove_stale_temporaries', 'save_checkpoint_atomic',
    'fetch_pretrained', 'finish_distributed', 'merge_cli', 'prepare_distributed',
    'revert_sync_bn_if_single', 'validate_cfg_options',
    'CheckpointMatchHook', 'CheckpointMismatchError', 'ImageCheckHook', 'NonFiniteLossError',
    'NonFiniteLossHook',
    'SkippedImagesReportHook', 'StaleTemporariesHook', 'add_reliability_hooks',
    'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop', 'check_checkpoint_intact',
    'find_resume_checkpoint', 'read_last_checkpoint', 'seed_iteration', 'use_resumable_loops'
]
