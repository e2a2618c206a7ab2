from .checkpoint_io import (ALLOWED_GLOBALS, CorruptCheckpointError, UnsafeCheckpointError,
                            load_checkpoint_file, save_checkpoint_atomic)
from .launch import (check_pretrained_exists, merge_cli, prepare_distributed,
                     revert_sync_bn_if_single, validate_cfg_options)

__all__ = [
    'ALLOWED_GLOBALS', 'CorruptCheckpointError', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'save_checkpoint_atomic', 'check_pretrained_exists', 'merge_cli', 'prepare_distributed',
    'revert_sync_bn_if_single', 'validate_cfg_options'
]
