"""What every test module shares: the one rule for tests that need a service (PostgreSQL, Chromium).

Where the service is missing a test is skipped with the reason — except under ``CI=true``, where
every test must run, so a missing set-up step fails instead of hiding behind a skip.
"""

from __future__ import annotations

import os

import optuna
import pytest

from storage.testing import PG_TEST_URL, pg_unreachable_reason

UNDER_CI = os.environ.get("CI", "").lower() == "true"
# Answers are computed, never served from storage.answer_cache, unless a test turns it on (its own folder):
# a test that patches the evidence must see its patch, and no test writes to the user's cache.
os.environ["BASIN_CACHE"] = "off"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def require(reason: str | None) -> None:
    """Nothing if ``reason`` is None; else skip with it — or fail, under CI=true."""
    if reason is None:
        return
    if UNDER_CI:
        pytest.fail(f"{reason} (CI=true: this test must run here)")
    pytest.skip(reason)


def require_pg() -> str:
    """The PostgreSQL test URL ($BASIN_TEST_PG_URL), when the server answers (see :func:`require`)."""
    require(pg_unreachable_reason(PG_TEST_URL))
    return PG_TEST_URL


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL test database (shared: isolate by sweep name or a scratch schema)."""
    return require_pg()
