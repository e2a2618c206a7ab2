"""Small helpers shared across the package (no toolkit imports: any module may use them)."""


def is_remote(path) -> bool:
    """Whether ``path`` names a remote file (``http://``, ``s3://``...), which MMEngine's file
    backends read, rather than a local one that we can check or write ourselves."""
    return '://' in str(path)
