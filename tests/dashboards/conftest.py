"""Fixtures of the dashboard tests: real SQLite and PostgreSQL databases filled through storage's write
API (:mod:`tests.dashboards.planted`), real servers (``basin dashboard`` in a subprocess), and one real
sweep run by the real CLI for the browser test. Nothing is mocked.

PostgreSQL is ``$BASIN_TEST_PG_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/test); its
data are isolated by unique sweep names and deleted with ``storage.delete_sweep`` afterwards. When it
is unreachable the PostgreSQL tests follow the suite's one rule (:func:`tests.conftest.require`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import storage
from storage.testing import PG_TEST_URL
from tests.conftest import UNDER_CI, require, require_pg
from tests.dashboards.planted import LRS, WDS, paper_sweep, record_sweep

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BASIN = str(BIN / "basin")
#: A sweep name that is HTML with JavaScript in it: it must be shown as text everywhere.
EVIL = '<img src=x onerror="alert(1)">'
#: The "means" sweep: 3 seeds at one cell, plus a re-run of seed 0 (the latest COMPLETE counts).
MEANS_VALUES = {0: 0.30, 1: 0.20, 2: 0.10}
MEANS_RERUN = 0.40  # seed 0 recorded again later: the cell mean is (0.40 + 0.20 + 0.10) / 3


# --- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """The sweep names one database holds for the tests."""

    paper: str
    other: str
    evil: str
    means: str


def write_means(rdb, sweep: str) -> None:
    """One AdamW cell with three seeds, seed 0 recorded twice (a re-run), and one FAIL re-run after a COMPLETE."""
    lr, wd = LRS[2], WDS[2]
    record_sweep(rdb, sweep, optimizers=("adamw",), schedules=("cosine",), lrs=[lr, LRS[3]], wd_norms=[wd, WDS[3]],
                 budgets=[4], seeds=[0, 1, 2], value=lambda o, a, w, t, s: MEANS_VALUES[s] if (a, w) == (lr, wd) else 0.5)
    # the re-run of seed 0, written last, replaces its first trial in the cell mean
    record_sweep(rdb, sweep, optimizers=("adamw",), schedules=("cosine",), lrs=[lr], wd_norms=[wd], budgets=[4],
                 seeds=[0], value=lambda *a: MEANS_RERUN)
    # a FAIL after a COMPLETE does not replace it
    record_sweep(rdb, sweep, optimizers=("adamw",), schedules=("cosine",), lrs=[lr], wd_norms=[wd], budgets=[4],
                 seeds=[1], fail=lambda *a: True)


def fill(url: str, names: Names, *, full: bool = True) -> None:
    rdb = storage.open_storage(url)
    try:
        if full:
            paper_sweep(rdb, names.paper)
        else:  # a lighter sweep for PostgreSQL: Figure 2's four optimizers, 4×5 (3 coupled rows bracket λ*), one seed
            record_sweep(rdb, names.paper, optimizers=("sgd", "sgdw", "adam", "adamw"), schedules=("cosine",),
                         lrs=LRS, wd_norms=WDS[1:], budgets=[4],
                         diverge=lambda o, a, w, t, s: a == LRS[-1] and w == WDS[-1])
        record_sweep(rdb, names.other, optimizers=("adamw", "adamw-torch"), schedules=("cosine",), lrs=LRS[1:],
                     wd_norms=WDS[1:], budgets=[4])
        record_sweep(rdb, names.evil, optimizers=("adamw",), schedules=("cosine",), lrs=LRS[:2], wd_norms=WDS[:2],
                     budgets=[4])
        write_means(rdb, names.means)
    finally:
        rdb.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory) -> tuple[str, Names]:
    """A SQLite database with the planted sweeps (written once per session)."""
    path = tmp_path_factory.mktemp("dash-sqlite") / "basin.db"
    url = f"sqlite:///{path}"
    names = Names(paper="paper", other="paper-b", evil=EVIL, means="means")
    fill(url, names)
    return url, names


@pytest.fixture(scope="session")
def pg_db() -> tuple[str, Names]:
    """The shared PostgreSQL test database with this session's planted sweeps (deleted afterwards)."""
    require_pg()
    tag = uuid.uuid4().hex[:8]
    names = Names(paper=f"dash-{tag}-paper", other=f"dash-{tag}-b", evil=f"{EVIL} {tag}", means=f"dash-{tag}-means")
    try:
        fill(PG_TEST_URL, names, full=False)
        yield PG_TEST_URL, names
    finally:
        rdb = storage.open_storage(PG_TEST_URL)
        for name in (names.paper, names.other, names.evil, names.means):
            try:
                storage.delete_sweep(rdb, name)
            except storage.UnknownNameError:
                pass
        rdb.engine.dispose()


# --- servers --------------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def get(self, path: str) -> tuple[int, dict | str, dict]:
        """(status, decoded JSON or text, headers) of GET ``path``."""
        try:
            with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=60) as resp:
                status, body, headers = resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            status, body, headers = err.code, err.read().decode(), dict(err.headers)
        if headers.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(body), headers
        return status, body, headers

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


def start_server(cmd: list[str], log: Path, url_pattern: str, *, env: dict | None = None,
                 timeout_s: float = 120) -> Server:
    """Start ``cmd``, read its URL from its log with ``url_pattern``, wait until /api/sweeps answers."""
    fh = open(log, "w")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    fh.close()
    deadline = time.monotonic() + timeout_s
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n{log.read_text()}")
        m = re.search(url_pattern, log.read_text())
        if m:
            url = m.group(1)
            break
        time.sleep(0.2)
    if url is None:
        proc.kill()
        raise RuntimeError(f"no URL from {cmd} in {timeout_s} s:\n{log.read_text()}")
    server = Server(url, proc, log)
    while time.monotonic() < deadline:
        try:
            if server.get("/api/sweeps")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{url} never answered /api/sweeps:\n{log.read_text()}")


def dashboard(url: str, log: Path) -> Server:
    return start_server([BASIN, "dashboard", "--storage", url, "--port", "0"], log,
                        r"Basin dashboard on (http://\S+?)/? ")


@pytest.fixture(scope="session")
def sqlite_server(sqlite_db, tmp_path_factory) -> Server:
    server = dashboard(sqlite_db[0], tmp_path_factory.mktemp("logs") / "sqlite-server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_server(pg_db, tmp_path_factory) -> Server:
    server = dashboard(pg_db[0], tmp_path_factory.mktemp("logs") / "pg-server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live(request) -> tuple[Server, Names, str]:
    """(server, sweep names, storage URL) on each backend."""
    if request.param == "sqlite":
        url, names = request.getfixturevalue("sqlite_db")
        return request.getfixturevalue("sqlite_server"), names, url
    url, names = request.getfixturevalue("pg_db")
    return request.getfixturevalue("pg_server"), names, url


# --- one real sweep -------------------------------------------------------------------------------

SMOKE_SPEC = """
name = "{name}"
dataset = "digits"
model = "cnn"
batch_size = 128
budgets = [2]
seeds = [0]
max_concurrent_trials = 2

[resources]
cpus = 1

[[schedules]]
name = "cosine"

[optimizers.sgd]
lr = [0.05, 0.2]
wd_norm = [0.025, 0.1]

[optimizers.sgdw]
lr = [0.05, 0.2]
wd_norm = [0.025, 0.1]

[optimizers.adam]
lr = {{ start = -10, stop = -8, num = 2 }}
wd_norm = [0.025, 0.1]

[optimizers.adamw]
lr = {{ start = -10, stop = -8, num = 2 }}
wd_norm = [0.025, 0.1]
"""


@pytest.fixture(scope="session")
def real_sweep(sqlite_db, tmp_path_factory) -> str:
    """The name of a tiny sweep run by the real ``basin sweep`` (digits, 4 optimizers × 2×2 grid, T=2) into
    the session's SQLite database (beside the planted sweeps: one server serves both)."""
    tmp = tmp_path_factory.mktemp("real-sweep")
    name = "smoke"
    spec = tmp / "smoke.toml"
    spec.write_text(SMOKE_SPEC.format(name=name))
    url = sqlite_db[0]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    out = subprocess.run([BASIN, "sweep", str(spec), "--storage", url, "--quiet"], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp)
    assert out.returncode == 0, f"basin sweep failed:\n{out.stdout}\n{out.stderr}"
    return name
