"""Opening storage: WAL + busy timeout on SQLite, read-only refusal on both backends, clear errors."""

from __future__ import annotations

import sqlite3

import optuna
import pytest
import sqlalchemy as sa

from storage import (
    EmptyStorageError,
    GridPoint,
    ReadOnlyStorageError,
    StorageError,
    default_url,
    ensure_study,
    grid_distributions,
    is_read_only,
    open_storage,
    record_trial,
)
from tests.planted import study_attrs, trial_attrs


def test_default_url_reads_environment(monkeypatch):
    monkeypatch.delenv("BASIN_STORAGE", raising=False)
    assert default_url() == "sqlite:///basin.db"
    monkeypatch.setenv("BASIN_STORAGE", "postgresql+psycopg://u@h/db")
    assert default_url() == "postgresql+psycopg://u@h/db"


def test_sqlite_is_wal_with_busy_timeout(tmp_path):
    path = tmp_path / "w.db"
    storage = open_storage(f"sqlite:///{path}")
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    with sqlite3.connect(path) as raw:  # persistent: any other process sees WAL too
        assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    reader = open_storage(f"sqlite:///{path}", read_only=True)
    with reader.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA query_only").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_reader_sees_writer_commits_while_open(tmp_path, sweep_name):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    writer = open_storage(url)
    study = ensure_study(writer, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs())
    reader = open_storage(url, read_only=True)
    dists = grid_distributions([0.1], [0.05], [2], [0, 1])
    with reader.engine.connect() as conn:  # a reader holding a connection does not block the writer
        conn.exec_driver_sql("SELECT count(*) FROM trials").scalar()
        record_trial(study, GridPoint("sgd", "cosine", 0.1, 0.05, 2, 0), dists, state="COMPLETE", value=0.3,
                     intermediate={1: 0.4, 2: 0.3}, user_attrs=trial_attrs(0.3, 2, 0.01))
    with reader.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM trials").scalar() == 1


def test_read_only_refuses_writes(fresh_url, sweep_name):
    writer = open_storage(fresh_url)
    study = ensure_study(writer, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs())
    reader = open_storage(fresh_url, read_only=True)
    assert is_read_only(reader) and not is_read_only(writer)
    ro_study = optuna.load_study(study_name=study.study_name, storage=reader)
    dists = grid_distributions([0.1], [0.05], [2], [0])
    point = GridPoint("sgd", "cosine", 0.1, 0.05, 2, 0)
    with pytest.raises(ReadOnlyStorageError, match="read-only"):
        record_trial(ro_study, point, dists, state="COMPLETE", value=0.3, intermediate={},
                     user_attrs=trial_attrs(0.3, 2, 0.01))
    with pytest.raises(ReadOnlyStorageError):
        ensure_study(reader, sweep=sweep_name, optimizer="adam", schedule="cosine", attrs=study_attrs())
    # The database itself refuses, whatever goes around Basin's API.
    with pytest.raises(optuna.exceptions.StorageInternalError):
        optuna.create_study(study_name="sneaky", storage=reader)
    with pytest.raises(sa.exc.DBAPIError):
        with reader.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM study_user_attributes")
    assert optuna.get_all_study_names(writer) == [study.study_name]
    assert writer.get_study_user_attrs(study._study_id)["sweep"] == sweep_name


def test_read_only_on_missing_sqlite_file_says_so(tmp_path):
    with pytest.raises(EmptyStorageError, match="no database at"):
        open_storage(f"sqlite:///{tmp_path / 'absent.db'}", read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_read_only_on_database_without_optuna_tables(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(EmptyStorageError, match="no Optuna tables"):
        open_storage(f"sqlite:///{path}", read_only=True)


def test_incompatible_optuna_schema_is_one_clear_line(fresh_url):
    open_storage(fresh_url).engine.dispose()
    engine = sa.create_engine(fresh_url)
    with engine.begin() as conn:  # as if an older Optuna had created the tables
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'v3.0.0.a'")
    engine.dispose()
    for read_only in (False, True):
        with pytest.raises(StorageError) as info:
            open_storage(fresh_url, read_only=read_only)
        message = str(info.value)
        assert "\n" not in message
        assert "no longer compatible with the table schema" in message  # Optuna's own words
        assert "optuna storage upgrade" in message


def test_bad_urls_are_one_line_errors(tmp_path):
    with pytest.raises(StorageError, match="cannot parse storage URL"):
        open_storage("not a url")
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    with pytest.raises(StorageError) as info:
        open_storage("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert "cannot open storage" in str(info.value) and "\n" not in str(info.value)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(StorageError, match="garbage.db"):
        open_storage(f"sqlite:///{garbage}")


def test_basin_locks_never_release_sqlites_own_locks_on_the_database_file(tmp_path):
    """Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's own
    included: a Basin lock (``exclusive``, the claims' lock) that opened and closed the database file
    let another process's closing connection think itself the last, checkpoint and delete the WAL
    under this process's open connection — a sweep's next write then failed with "disk I/O error"
    (seen when `basin sweep` ran adaptive rounds while another process read the database)."""
    import subprocess
    import sys

    from storage.connect import exclusive

    path = tmp_path / "b.db"
    rdb = open_storage(f"sqlite:///{path}")
    optuna.create_study(study_name="s", storage=rdb)
    with rdb.engine.connect() as held:  # this process's live connection (a shared lock on the file)
        held.execute(sa.text("SELECT count(*) FROM studies")).scalar()
        with exclusive(rdb, "basin-claims/x"):
            pass
        reader = f"import sqlite3; c = sqlite3.connect({str(path)!r}); c.execute('select 1 from studies').fetchall(); c.close()"
        subprocess.run([sys.executable, "-c", reader], check=True, timeout=60)
        assert (tmp_path / "b.db-wal").exists() and (tmp_path / "b.db-shm").exists()
        held.execute(sa.text("SELECT count(*) FROM studies")).scalar()
    optuna.create_study(study_name="t", storage=rdb)  # a write after it: no disk I/O error
    assert {s.study_name for s in optuna.get_all_study_summaries(rdb)} == {"s", "t"}
