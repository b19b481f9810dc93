"""The two errors of CIFAR loading: the data is not there, or it is not what it claims to be."""
from __future__ import annotations


class DataNotFoundError(FileNotFoundError):
    """The dataset is not in the data directory and could not be downloaded.

    ``cli_message``: the same text for command-line users (``--data-dir DIR``, not ``data_dir=``)."""

    def __init__(self, message, cli_message=None):
        super().__init__(message)
        self.cli_message = cli_message


class DataIntegrityError(ValueError):
    """A file is corrupt, truncated or not what it claims to be (MD5, size, records, labels)."""
