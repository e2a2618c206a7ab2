"""Checkpoint files, below the models and the engine: safe (weights-only) reading of every
file format we accept, atomic writing (:mod:`.io`), and fetching released checkpoints into a
cache (:mod:`.hub`)."""
from .hub import (CACHE_ENV, CheckpointDownloadError, cache_dir, download, is_fetched,
                  resolve_checkpoint)
from .io import (ALLOWED_GLOBALS, CorruptCheckpointError, UnsafeCheckpointError,
                 load_checkpoint_file, plain_checkpoint, remove_stale_temporaries,
                 save_checkpoint_atomic)

__all__ = [
    'CACHE_ENV', 'CheckpointDownloadError', 'cache_dir', 'download', 'is_fetched',
    'resolve_checkpoint', 'ALLOWED_GLOBALS', 'CorruptCheckpointError', 'UnsafeCheckpointError',
    'load_checkpoint_file', 'plain_checkpoint', 'remove_stale_temporaries',
    'save_checkpoint_atomic'
]
