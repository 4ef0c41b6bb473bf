"""Backends for the storage tests: every test runs on SQLite (a temp file) and PostgreSQL.

PostgreSQL is ``$BASIN_TEST_PG_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Tests run inside a schema created for this session and dropped at its end, so they never touch
other tables of the shared database; tests that need an empty database get a schema of their own.
When the server is unreachable the PostgreSQL variants are skipped with the reason — except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import uuid

import optuna
import pytest

from storage import delete_sweep, open_storage
from storage.errors import UnknownNameError
from storage.testing import PG_TEST_URL, pg_unreachable_reason, plant_sweep, scratch_schema

BACKENDS = ("sqlite", "postgresql")

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _require_pg() -> None:
    reason = pg_unreachable_reason(PG_TEST_URL)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_session_url():
    """A PostgreSQL URL whose search_path is a schema private to this test session."""
    _require_pg()
    with scratch_schema(PG_TEST_URL) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def backend_url(request, tmp_path_factory):
    """Session-wide database URL per backend (tests isolate themselves by sweep name)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'basin.db'}"
    return request.getfixturevalue("pg_session_url")


@pytest.fixture(params=BACKENDS)
def fresh_url(request, tmp_path):
    """An empty database per test: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    _require_pg()
    with scratch_schema(PG_TEST_URL) as url:
        yield url


@pytest.fixture
def sweep_name(request):
    """A sweep name unique to this test."""
    return f"t-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rdb(backend_url, sweep_name):
    """Writable storage on the session database; the test's sweep is deleted afterwards."""
    storage = open_storage(backend_url)
    yield storage
    try:
        delete_sweep(storage, sweep_name)
    except UnknownNameError:
        pass
    storage.engine.dispose()


@pytest.fixture(scope="session")
def planted(backend_url):
    """(url, sweep) of the planted sweep, written once per backend per session."""
    sweep = f"planted-{uuid.uuid4().hex[:8]}"
    storage = open_storage(backend_url)
    plant_sweep(storage, sweep)
    storage.engine.dispose()
    yield backend_url, sweep
    storage = open_storage(backend_url)
    delete_sweep(storage, sweep)
    storage.engine.dispose()
