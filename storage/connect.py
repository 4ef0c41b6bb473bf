"""Open the Optuna RDB storage that holds Basin's sweeps: SQLite (default) or PostgreSQL.

One job: turn a URL into a ready :class:`optuna.storages.RDBStorage`, configured so that a sweep
can write while a dashboard reads.

SQLite
    * WAL journal (readers never block the writer, the writer never blocks readers) and a 30 s
      busy timeout, so a dashboard reading a live database does not hit "database is locked".
    * Writers start every transaction with ``BEGIN IMMEDIATE``: Optuna reads, then writes, in one
      transaction; under WAL a deferred transaction that must upgrade to a write after another
      process committed fails at once (SQLITE_BUSY_SNAPSHOT, no busy wait). Taking the write
      lock up front turns that into an ordinary wait. Two drivers can then share one file.
    * Read-only: the file is opened with a ``mode=ro`` URI and ``PRAGMA query_only=ON``.
PostgreSQL
    * Read-only: every transaction is read-only (``-c default_transaction_read_only=on`` in
      the connection options); the server refuses writes.
    * First-time table creation is serialised with an advisory lock, so two drivers starting
      together on an empty database do not race on CREATE TABLE / the alembic stamp.

Every failure to open comes out as one :class:`~storage.errors.StorageError` line, including
Optuna's own "no longer compatible with the table schema" message for a database written by
another Optuna version.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from storage.errors import EmptyStorageError, ReadOnlyStorageError, StorageError, one_line

ENV_VAR = "BASIN_STORAGE"
DEFAULT_URL = "sqlite:///basin.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
_PG_INIT_LOCK_KEY = 0x6261_7369_6E00  # "basin\0": serialises first-time table creation
_READ_ONLY_ATTR = "_basin_read_only"
_LABEL_ATTR = "_basin_url"


def default_url() -> str:
    """The storage URL to use when none is given: ``$BASIN_STORAGE``, else ``sqlite:///basin.db``."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def safe_url(url: str | URL) -> str:
    """``url`` with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a message helper must not raise
        return str(url)


def rdb_of(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The RDBStorage behind ``storage`` (a Study's ``_storage`` wraps it in Optuna's cache)."""
    return getattr(storage, "_backend", storage)


def storage_label(storage: optuna.storages.BaseStorage) -> str:
    """The URL ``storage`` was opened with (password masked), for messages."""
    storage = rdb_of(storage)
    return getattr(storage, _LABEL_ATTR, None) or safe_url(getattr(storage, "url", "?"))


def is_read_only(storage: optuna.storages.BaseStorage) -> bool:
    """Whether ``storage`` was opened by :func:`open_storage` with ``read_only=True``."""
    return bool(getattr(rdb_of(storage), _READ_ONLY_ATTR, False))


def check_writable(storage: optuna.storages.BaseStorage) -> None:
    """Raise :class:`ReadOnlyStorageError` if ``storage`` was opened read-only."""
    if is_read_only(storage):
        raise ReadOnlyStorageError(
            f"storage {storage_label(storage)} was opened read-only; open it with open_storage(url) to write"
        )


StorageLike = optuna.storages.RDBStorage | str


def reader(storage: StorageLike) -> optuna.storages.RDBStorage:
    """The RDB storage a read works on: ``storage`` itself (unwrapped from Optuna's cache), or a
    URL opened read-only."""
    if isinstance(storage, str):
        return open_storage(storage, read_only=True)
    storage = rdb_of(storage)
    if not isinstance(storage, optuna.storages.RDBStorage):
        raise StorageError(f"Basin reads need an RDB storage (SQLite/PostgreSQL URL), got {type(storage).__name__}")
    return storage


#: Claims of points in flight (see :func:`storage.record.claim_points`): a driver beats every
#: HEARTBEAT_S seconds; a claim whose heartbeat is older than GRACE_S is stale and taken over.
HEARTBEAT_S = 10
GRACE_S = 60


def open_storage(url: str | None = None, *, read_only: bool = False) -> optuna.storages.RDBStorage:
    """Open (and, unless ``read_only``, create) the Optuna RDB storage at ``url``.

    ``url`` defaults to :func:`default_url`. Read-only opening never creates anything: a missing
    SQLite file or a database without Optuna's tables raises :class:`EmptyStorageError`.
    Raises :class:`StorageError` (one line) for a malformed URL, an unreachable server or a
    schema written by an incompatible Optuna.
    """
    raw = url or default_url()
    try:
        parsed = make_url(raw)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError/ValueError
        raise StorageError(
            f"cannot parse storage URL {raw!r} ({one_line(exc)}); use e.g. sqlite:///basin.db "
            "or postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    label = safe_url(parsed)  # what the user typed (password masked), never Basin's rewritten URL
    if backend == "sqlite":
        storage = _open_sqlite(parsed, read_only, label)
    elif backend == "postgresql":
        storage = _open_postgresql(parsed, read_only, label)
    else:  # e.g. MySQL: works through Optuna, read-only is enforced by Basin's API only.
        storage = _construct(parsed, engine_kwargs={}, read_only=read_only, label=label)
    setattr(storage, _READ_ONLY_ATTR, read_only)
    setattr(storage, _LABEL_ATTR, label)
    return storage


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_path(parsed: URL) -> str | None:
    """The database file of a SQLite URL, absolute; None for an in-memory database."""
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return str(Path(database).expanduser().resolve())


def _check_sqlite_path(path: str) -> None:
    """A database path that can never hold a database: a folder, or a file in a missing folder."""
    if os.path.isdir(path):
        raise StorageError(f"{path} is a directory, not a database file; give a file path such as "
                           f"sqlite:///{os.path.join(path, 'basin.db')}")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise StorageError(f"directory {parent} does not exist; create it or choose another database path")


def _open_sqlite(parsed: URL, read_only: bool, label: str) -> optuna.storages.RDBStorage:
    path = _sqlite_path(parsed)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    if path is None:
        if read_only:
            raise StorageError("an in-memory SQLite database cannot be opened read-only; give a file URL")
        return _construct(parsed, engine_kwargs={"connect_args": connect_args}, read_only=False, label=label)
    _check_sqlite_path(path)
    if read_only:
        if not os.path.isfile(path):
            raise EmptyStorageError(
                f"no database at {path}: nothing recorded yet, or a wrong path "
                f"(pass --storage URL or set ${ENV_VAR})"
            )
        ro_url = URL.create("sqlite", database=f"file:{quote(path)}", query={"mode": "ro", "uri": "true"})
        _require_optuna_tables(ro_url, {"connect_args": connect_args}, label)
        storage = _construct(ro_url, engine_kwargs={"connect_args": connect_args}, read_only=True, label=label)
        sa.event.listen(storage.engine, "connect", _sqlite_read_only_pragmas)
    else:
        with _file_lock(path):
            _set_wal(path)
            storage = _construct(parsed, engine_kwargs={"connect_args": connect_args}, read_only=False, label=label)
        sa.event.listen(storage.engine, "connect", _sqlite_writer_pragmas)
        sa.event.listen(storage.engine, "begin", _sqlite_begin_immediate)
    storage.engine.dispose()  # connections made during construction lack the listeners above
    return storage


@contextmanager
def exclusive(storage: optuna.storages.RDBStorage, name: str):
    """A lock named ``name`` that every Basin process using this database respects, held for the
    ``with`` block: a PostgreSQL advisory lock on its own connection, or ``flock`` on the SQLite file."""
    rdb = rdb_of(storage)
    engine = rdb.engine
    if engine.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    path = _sqlite_path(engine.url)
    if path is None:  # in-memory: one process, nothing to lock against
        yield
        return
    with _file_lock(path):
        yield


#: {database path: (descriptor, in-process lock)}: the descriptors :func:`_file_lock` flocks, kept open.
_LOCK_FDS: dict[str, tuple[int, threading.Lock]] = {}
_LOCK_FDS_GUARD = threading.Lock()


def _lock_fd(path: str) -> tuple[int, threading.Lock]:
    """The process's descriptor of the database file for ``flock``, opened once and never closed.

    Never closed on purpose: closing *any* descriptor of a file releases every POSIX lock the process
    holds on it — SQLite's own included. A closed lock descriptor let another process's closing
    connection take the file's exclusive lock, believe itself the last, checkpoint and delete the WAL
    under this process's live connections ("disk I/O error" on its next write;
    tests/storage/test_storage_connect.py). Reopened only when the path names another file now."""
    with _LOCK_FDS_GUARD:
        held = _LOCK_FDS.get(path)
        if held is not None:
            try:
                same = os.fstat(held[0]).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return held
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        _LOCK_FDS[path] = (fd, held[1] if held is not None else threading.Lock())
        return _LOCK_FDS[path]


@contextmanager
def _file_lock(path: str):
    """Exclusive ``flock`` on the database file itself (Optuna creating its tables, a sweep's claims).

    ``flock`` locks are independent of the POSIX byte-range locks SQLite uses, so this does not
    interfere with SQLite — as long as no descriptor of the file is ever closed (:func:`_lock_fd`).
    ``flock`` belongs to the shared descriptor, so threads of one process also take a
    ``threading.Lock`` first."""
    fd, in_process = _lock_fd(path)
    with in_process:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _set_wal(path: str) -> None:
    """Switch the file to WAL; persistent, so every later connection of any process uses it."""
    try:
        con = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"cannot open SQLite database {path}: {one_line(exc)}") from None
    if str(mode).lower() != "wal":
        raise StorageError(f"SQLite refused WAL mode for {path} (got {mode!r}); use a local file system")


def _sqlite_writer_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the driver's implicit BEGIN off: SQLAlchemy emits ours
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across application crashes under WAL
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_read_only_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def _open_postgresql(parsed: URL, read_only: bool, label: str) -> optuna.storages.RDBStorage:
    engine_kwargs = {"pool_pre_ping": True}
    if read_only:
        options = " ".join(filter(None, [parsed.query.get("options", ""), "-c default_transaction_read_only=on"]))
        parsed = parsed.update_query_dict({"options": options})
        _require_optuna_tables(parsed, engine_kwargs, label)
        return _construct(parsed, engine_kwargs=engine_kwargs, read_only=True, label=label)
    lock_engine = _engine(parsed, {"poolclass": sa.pool.NullPool}, label)
    try:
        with lock_engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_INIT_LOCK_KEY})
            try:
                return _construct(parsed, engine_kwargs=engine_kwargs, read_only=False, label=label)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_INIT_LOCK_KEY})
    except sa.exc.SQLAlchemyError as exc:
        raise _connect_error(label, exc) from None
    finally:
        lock_engine.dispose()


# --- shared -------------------------------------------------------------------------------------


def _engine(parsed: URL, engine_kwargs: dict, label: str) -> sa.Engine:
    try:
        return sa.create_engine(parsed, **engine_kwargs)
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise StorageError(f"cannot use storage URL {label}: {one_line(exc)}") from None


def _connect_error(label: str, exc: BaseException) -> StorageError:
    detail = getattr(exc, "orig", None) or exc
    return StorageError(f"cannot open storage {label}: {one_line(detail)}")


def _require_optuna_tables(parsed: URL, engine_kwargs: dict, label: str) -> None:
    """Read-only opening must not create tables: say plainly when there are none."""
    engine = _engine(parsed, {**engine_kwargs, "poolclass": sa.pool.NullPool}, label)
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
    except sa.exc.SQLAlchemyError as exc:
        raise _connect_error(label, exc) from None
    finally:
        engine.dispose()
    if "studies" not in names or "version_info" not in names:
        raise EmptyStorageError(f"{label} holds no Optuna tables: nothing recorded yet, or a wrong database")


def _construct(parsed: URL, *, engine_kwargs: dict, read_only: bool, label: str) -> optuna.storages.RDBStorage:
    url = parsed.render_as_string(hide_password=False)
    try:
        with warnings.catch_warnings():  # heartbeat_interval is "experimental" in Optuna: we rely on it knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=read_only,
                                              heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except RuntimeError as exc:  # Optuna's schema-compatibility message
        if "compatible" in str(exc):
            raise StorageError(f"{label}: {one_line(exc)}") from None
        raise
    except optuna.exceptions.StorageInternalError as exc:
        raise _connect_error(label, exc.__cause__ or exc) from None
    except sa.exc.SQLAlchemyError as exc:
        raise _connect_error(label, exc) from None
    except ImportError as exc:
        raise StorageError(f"cannot use storage URL {label}: {one_line(exc)}") from None


__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "ReadOnlyStorageError",
    "StorageLike",
    "check_writable",
    "default_url",
    "is_read_only",
    "open_storage",
    "reader",
    "safe_url",
    "storage_label",
]
