"""The storage package's exceptions: one line each, naming the problem and the fix.

Callers (the ``basin`` CLI, the dashboard) print ``str(err)`` as it is; no traceback is needed to
understand one of these.
"""

from __future__ import annotations


class StorageError(RuntimeError):
    """The storage cannot be opened or used as asked (bad URL, unreachable server, foreign schema)."""


class ReadOnlyStorageError(StorageError):
    """A write was attempted through a storage opened with ``read_only=True``."""


class EmptyStorageError(StorageError, LookupError):
    """The storage holds no Basin sweep (or no Optuna tables) yet."""


class UnknownNameError(StorageError, LookupError):
    """A sweep, study, optimizer or schedule name that the storage does not hold."""


def one_line(text: object) -> str:
    """``text`` squeezed onto one line (driver messages often span several)."""
    return " ".join(str(text).split())
