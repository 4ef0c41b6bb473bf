"""Helpers for your own tests and benchmarks of code that reads Basin storage (real databases, no mocks).

* :func:`pg_unreachable_reason` says whether a PostgreSQL server answers (and why not).
* :func:`scratch_schema` gives a PostgreSQL URL whose ``search_path`` is a fresh schema, dropped
  afterwards, so tests sharing one database never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage.errors import one_line

PG_TEST_URL = os.environ.get("BASIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_unreachable_reason(url: str = PG_TEST_URL, timeout_s: int = 3) -> str | None:
    """None if PostgreSQL at ``url`` answers, else one line saying why not."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": timeout_s})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
        return f"PostgreSQL unreachable at {make_url(url).render_as_string(hide_password=True)}: {one_line(getattr(exc, 'orig', exc))[:200]}"
    finally:
        engine.dispose()
    return None


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``-c search_path=schema`` added to its connection options."""
    parsed = make_url(url)
    options = " ".join(filter(None, [parsed.query.get("options", ""), f"-c search_path={schema}"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@contextmanager
def scratch_schema(url: str = PG_TEST_URL, prefix: str = "basin_test") -> Iterator[str]:
    """Create a uniquely named schema, yield ``url`` pointed at it, drop it (CASCADE) on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield with_search_path(url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


__all__ = ["PG_TEST_URL", "pg_unreachable_reason", "scratch_schema", "with_search_path"]
