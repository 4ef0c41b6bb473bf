"""Backends for the storage tests: every test runs on SQLite (a temp file) and PostgreSQL.

PostgreSQL is ``$BASIN_TEST_PG_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Tests run inside a schema created for this session and dropped at its end, so they never touch
other tables of the shared database; tests that need an empty database get a schema of their own.
When the server is unreachable the PostgreSQL variants follow the suite's one rule
(:func:`tests.conftest.require`: skipped with the reason, failed under ``CI=true``).
"""

from __future__ import annotations

import uuid

import pytest

from storage import delete_sweep, open_storage
from storage.errors import UnknownNameError
from storage.testing import scratch_schema
from tests.conftest import require_pg
from tests.storage.planted import plant_sweep

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_session_url():
    """A PostgreSQL URL whose search_path is a schema private to this test session."""
    with scratch_schema(require_pg()) as url:
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
    with scratch_schema(require_pg()) as url:
        yield url


@pytest.fixture
def sweep_name(request):
    """A sweep name unique to this test."""
    return f"t-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rdb(backend_url, sweep_name):
    """Writable storage on the session database; the test's sweep is deleted afterwards."""
    rdb = open_storage(backend_url)
    yield rdb
    try:
        delete_sweep(rdb, sweep_name)
    except UnknownNameError:
        pass
    rdb.engine.dispose()


@pytest.fixture(scope="session")
def planted(backend_url):
    """(url, sweep) of the planted sweep, written once per backend per session."""
    sweep = f"planted-{uuid.uuid4().hex[:8]}"
    rdb = open_storage(backend_url)
    plant_sweep(rdb, sweep)
    rdb.engine.dispose()
    yield backend_url, sweep
    rdb = open_storage(backend_url)
    delete_sweep(rdb, sweep)
    rdb.engine.dispose()
