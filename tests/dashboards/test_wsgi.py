"""Production serving: gunicorn runs ``dashboards.wsgi:application`` with the storage from ``BASIN_STORAGE``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.dashboards.conftest import start_server

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def test_gunicorn_serves_the_dashboard_and_the_api(sqlite_db, tmp_path):
    url, names = sqlite_db
    env = {**os.environ, "BASIN_STORAGE": url}
    server = start_server([GUNICORN, "--bind", "127.0.0.1:0", "--workers", "2", "--threads", "2", "--preload",
                           "dashboards.wsgi:application"], tmp_path / "gunicorn.log",
                          r"Listening at: (http://\S+) ", env=env)
    try:
        status, body, _ = server.get("/api/sweeps")
        assert status == 200 and names.paper in {s["sweep"] for s in body["sweeps"]}
        assert body["storage"] == url
        for _ in range(4):  # several requests: both forked workers open their own read-only connections
            status, body, _ = server.get(f"/api/best?sweep={names.paper}&view=headline")
            assert status == 200 and body["headline"]
        status, text, _ = server.get("/basins")
        assert status == 200 and "<title>Basin</title>" in text
        assert server.get("/api/basin?study=nope")[0] == 404
    finally:
        server.stop()
