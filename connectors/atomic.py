"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The bytes go to a temporary file beside the target (same directory, so the rename stays on one
file system), are flushed and fsync'ed, and the temporary file is renamed over the target. If
anything fails on the way the temporary file is removed and the target is left as it was. Only
the standard library, so connectors, pipelines and the sandbox can all use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_open(path: Path, *, sync_directory: bool = False) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` when the block ends without an error.

    Parent folders are created. `sync_directory` also fsyncs the folder after the rename, so
    that the rename itself survives a power cut (for files whose loss costs more than a rerun).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_directory:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (see `atomic_open`)."""
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` as UTF-8 atomically (see `atomic_open`)."""
    atomic_write_bytes(path, text.encode("utf-8"))
