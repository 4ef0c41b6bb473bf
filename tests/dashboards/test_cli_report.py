"""``basin report`` and ``basin dashboard``'s command line: the real ``basin`` parser (study.cli) with the
commands this package registers through the ``basin.commands`` entry point, in-process and as the real
``basin`` executable (a storage that can never hold a sweep: one line, exit 2, nothing served or written)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from study.cli import main
from tests.dashboards.conftest import BASIN, EVIL, dashboard


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_basin_lists_dashboard_and_report():
    out = subprocess.run([BASIN, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "dashboard" in out.stdout and "report" in out.stdout


def test_report_is_one_self_contained_offline_file(capsys, sqlite_db, tmp_path):
    url, names = sqlite_db
    out = tmp_path / "report.html"
    code, stdout, stderr = run(capsys, "report", "--storage", url, "--sweep", names.paper, "--out", str(out))
    assert code == 0, stderr
    assert f"wrote {out}" in stdout
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert len(html) > 3_000_000  # plotly.js itself is inside
    assert not re.search(r"<script[^>]+src=", html)  # no script fetched from anywhere: works offline
    assert "plotly.js v" in html[:200_000]  # the library, inline
    n = int(re.search(r"\((\d+) figures", stdout).group(1))
    assert html.count("Plotly.newPlot(") == n >= 6  # basins ×4 schedules, schedules, curves, budgets, anytime
    for text in ("Best settings (basin best)", "Figure 2", "Figure 1", "Figure 3", "SuppFigure 3", "Figure 4",
                 "Coupling of each basin", "adamw"):
        assert text in html
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


def test_the_reports_tables_carry_the_intervals(capsys, sqlite_db, tmp_path):
    import storage
    from dashboards.text import pct_interval

    url, names = sqlite_db
    out = tmp_path / "report.html"
    code, _, stderr = run(capsys, "report", "--storage", url, "--sweep", names.paper, "--out", str(out))
    assert code == 0, stderr
    html = out.read_text()
    for text in ("reported error [95%]", "cell mean [95%]", "P(best)", "relative improvement [95%]",
                 "λ* slope [95%]", "edge slope [95%]", "valley slope [95%]", "cross_fit", "test set + seeds", "λ_norm* [95%]", "paired over seeds"):
        assert text in html, text
    best = storage.best(url, names.paper)  # the report's numbers are storage's, intervals included
    for r in best.itertuples():
        assert pct_interval(r.error_lo, r.error_hi) in html
    for c in storage.coupling(url, names.paper):
        for ci in (c.argmin_slope_ci, c.slope_ci, c.edge_slope_ci):
            if ci:
                assert f"[{ci[0]:.2f}, {ci[1]:.2f}]".replace("-", "−") in html


def test_report_escapes_names_with_html(capsys, sqlite_db, tmp_path):
    url, names = sqlite_db
    out = tmp_path / "evil.html"
    code, _, stderr = run(capsys, "report", "--storage", url, "--sweep", names.evil, "--out", str(out))
    assert code == 0, stderr
    html = out.read_text()
    assert EVIL not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_report_bad_input_is_one_line_and_leaves_the_old_file(capsys, sqlite_db, tmp_path):
    url, _ = sqlite_db
    out = tmp_path / "report.html"
    out.write_text("previous report")
    code, _, err = run(capsys, "report", "--storage", url, "--sweep", "no-such-sweep", "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "unknown sweep 'no-such-sweep'" in err
    assert out.read_text() == "previous report"
    code, _, err = run(capsys, "report", "--storage", url, "--out", str(tmp_path / "missing" / "r.html"))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    code, _, err = run(capsys, "report", "--storage", url, "--out", str(tmp_path))
    assert code == 2 and "is a directory" in err
    code, _, err = run(capsys, "report", "--storage", f"sqlite:///{tmp_path / 'nothing.db'}", "--out", str(out))
    assert code == 1 and err.count("\n") == 1  # nothing recorded yet
    code, _, err = run(capsys, "report", "--storage", url)
    assert code == 2 and err.count("\n") == 1 and "--out" in err


def test_dashboard_bad_input_is_one_line_exit_2_and_hides_passwords(capsys):
    code, _, err = run(capsys, "dashboard", "--port", "70000")
    assert code == 2 and err.count("\n") == 1 and "--port" in err
    code, _, err = run(capsys, "dashboard", "--port", "http")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, "dashboard", "--storage", "postgresql+psycopg://basin:hunter2@127.0.0.1:1/basin")
    assert code == 2 and err.count("\n") == 1 and "hunter2" not in err and "***" in err
    code, _, err = run(capsys, "dashboard", "--storage", "nonsense")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, "dashboard", "--host", " ")
    assert code == 2 and err.count("\n") == 1 and "--host is empty" in err


# --- storages that can never hold a sweep ---------------------------------------------------------

#: case → what the one line must say
UNUSABLE = {
    "folder": "is a directory",
    "missing-folder": "does not exist",
    "not-a-database": "not a database",
    "refused-port": "refused",
    "not-a-url": "notaurl::",
}
COMMANDS = ("dashboard", "report")
WAIT_S = 120  # a command still running after this is serving: the hole this guards against


def refused_port() -> int:
    """A local TCP port nobody listens on (bound and released a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def unusable(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """case → (the --storage URL a user might type, the folder whose content must not change)."""
    root = tmp_path_factory.mktemp("unusable")
    (root / "folder").mkdir()
    (root / "text").mkdir()
    (root / "text" / "notes.db").write_text("not SQLite, just notes\n")
    return {
        "folder": (f"sqlite:///{root / 'folder'}", root / "folder"),
        "missing-folder": (f"sqlite:///{root / 'missing' / 'dir' / 'x.db'}", root),
        "not-a-database": (f"sqlite:///{root / 'text' / 'notes.db'}", root / "text"),
        "refused-port": (f"postgresql+psycopg://postgres@127.0.0.1:{refused_port()}/test", root),
        "not-a-url": ("notaurl::", root),
    }


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def refusals(unusable, tmp_path_factory) -> dict[tuple[str, str], tuple[int | None, str, str, bool]]:
    """(command, case) → (exit code or None if still running, stdout, stderr, whether anything was written);
    the ten real ``basin`` processes run side by side."""
    out_dir = tmp_path_factory.mktemp("refusal-reports")
    before = {case: tree(folder) for case, (_, folder) in unusable.items()}
    procs = {}
    for command in COMMANDS:
        for case, (url, _) in unusable.items():
            extra = ["--port", "0"] if command == "dashboard" else ["--out", str(out_dir / f"{case}.html")]
            procs[command, case] = subprocess.Popen([BASIN, command, "--storage", url, *extra], stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, text=True, env={**os.environ}, cwd=out_dir)
    results = {}
    for key, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=WAIT_S)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            code = None
        case = key[1]
        written = tree(unusable[case][1]) != before[case] or any(out_dir.iterdir())
        results[key] = (code, stdout, stderr, written)
    return results


@pytest.mark.parametrize("case", list(UNUSABLE))
@pytest.mark.parametrize("command", COMMANDS)
def test_a_storage_that_can_never_hold_a_sweep_is_one_line_and_exit_2(refusals, unusable, command, case):
    code, stdout, stderr, written = refusals[command, case]
    assert code is not None, f"basin {command} --storage {unusable[case][0]} still runs after {WAIT_S} s:\n{stderr}"
    assert code == 2 and stderr.count("\n") == 1 and stderr.startswith(f"basin {command}: "), stderr
    assert UNUSABLE[case] in stderr.lower(), stderr
    assert "Traceback" not in stderr and "serving anyway" not in stderr and stdout == ""
    assert "mode=ro" not in stderr and "default_transaction_read_only" not in stderr  # the URL as typed
    assert not written


def test_the_dashboard_serves_a_database_that_a_sweep_has_yet_to_create(tmp_path):
    db = tmp_path / "later.db"
    server = dashboard(f"sqlite:///{db}", tmp_path / "server.log")
    try:
        status, body, _ = server.get("/api/sweeps")
        assert status == 200 and body["sweeps"] == []
        assert "serving anyway" in (tmp_path / "server.log").read_text()
    finally:
        server.stop()
    assert not db.exists()  # read-only: the sweep creates it
