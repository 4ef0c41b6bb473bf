"""Files Basin writes for people (exports, the HTML report): whole or not at all.

:func:`output_path` checks an output path before any work is done; :func:`write_atomic` writes
through a temporary file in the same folder, flushed and fsynced, given the mode a plain
``open()`` would give (0666 less the umask, not mkstemp's 0600), then renamed over the target
and the folder fsynced — so a reader sees the old file or the new one, never half of one, and a
crash at any point leaves no half-written file under the target's name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from storage.errors import StorageError


def output_path(path: str | os.PathLike, flag: str = "--out") -> Path:
    """``path`` made absolute, refused (StorageError, naming ``flag``) if it cannot be written."""
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise StorageError(f"{target} is a directory; give a file name for {flag}")
    if not target.parent.is_dir():
        raise StorageError(f"directory {target.parent} does not exist; create it or choose another {flag}")
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(target: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it over ``target`` atomically."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


__all__ = ["output_path", "write_atomic"]
