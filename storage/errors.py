"""The storage package's exceptions: one line each, naming the problem and the fix.

Callers (the ``basin`` CLI, the dashboard) print ``str(err)`` as it is; no traceback is needed to
understand one of these.
"""

from __future__ import annotations

import functools
import sqlite3


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


def _db_errors() -> tuple[type[BaseException], ...]:
    """Database errors, including the drivers' own (fast reads use the DB-API cursor directly)."""
    import sqlalchemy as sa

    errors: list[type[BaseException]] = [sa.exc.SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency, but SQLite needs none
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


def read_errors(fn):
    """Decorator for a read taking a storage (or URL) first: a database error in it becomes one
    :class:`StorageError` line naming the storage (e.g. a database that is not an Optuna schema)."""

    @functools.wraps(fn)
    def wrapper(storage, *args, **kwargs):
        try:
            return fn(storage, *args, **kwargs)
        except _db_errors() as exc:
            from storage.connect import storage_label

            where = storage if isinstance(storage, str) else storage_label(storage)
            raise StorageError(f"reading {where} failed: {one_line(getattr(exc, 'orig', None) or exc)}") from None

    return wrapper
