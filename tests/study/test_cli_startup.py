"""``basin`` starts at once (issue 19): building the parser, ``basin --help`` and every command's --help but
``basin train``'s import none of torch, Ray, pandas, Dash, Plotly, Optuna or SQLAlchemy; each command imports
what it needs when it runs. Checked in a fresh interpreter, since this test process has them all loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from study.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "ray", "pandas", "dash", "plotly", "optuna", "sqlalchemy")

REPORT = f"""
import atexit, sys
atexit.register(lambda: print("HEAVY:" + ",".join(m for m in {HEAVY!r} if m in sys.modules)))
"""


def heavy_after(code: str) -> list[str]:
    """The heavy packages in sys.modules when ``code`` ends (a --help ends by SystemExit: atexit still runs)."""
    out = subprocess.run([sys.executable, "-c", REPORT + code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY:")]
    assert line, (out.stdout, out.stderr)
    return [m for m in line[-1].removeprefix("HEAVY:").split(",") if m]


def test_building_the_parser_imports_nothing_heavy():
    assert heavy_after("import study.cli; study.cli.build_parser()") == []


@pytest.mark.parametrize("argv", [[], ["best"], ["export"], ["reproduce"], ["sweep"], ["dashboard"], ["report"]])
def test_help_imports_nothing_heavy(argv):
    assert heavy_after(f"import study.cli; study.cli.main({[*argv, '--help']!r})") == []


def test_train_adds_its_options_when_it_is_used(capsys):
    """``basin train``'s options come from trainers (torch): added on first use, the same options as ever."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--dataset", "--optimizer {sgd,sgdw,adam,adamw,adamw-torch}", "--momentum-form {paper,torch}",
                   "--schedule {fixed,step-drop,cosine,warm-restarts}", "--decay {all,matrices}", "--json"):
        assert option in out, out


def test_a_bad_train_option_is_still_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--optimizer", "sgdx"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --optimizer: invalid choice: 'sgdx'" in err, err
    assert "(see basin train --help)" in err, err
