"""``basin report`` and ``basin dashboard``'s command line: the real ``basin`` parser (study.cli) with the
commands this package registers through the ``basin.commands`` entry point."""

from __future__ import annotations

import re
import subprocess

from study.cli import main
from tests.dashboards.conftest import BASIN, EVIL


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
