"""Sweep specs: parsing, grid expansion and one-line errors naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from study.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
BASIN = [str(Path(sys.executable).with_name("basin"))]

GOOD = """
name = "t"
dataset = "digits"
model = "cnn"
budgets = [2, 4]
seeds = [0, 1]

[[schedules]]
name = "cosine"

[[schedules]]
name = "warm-restarts"
t0 = 1
t_mult = 2

[optimizers.sgd]
lr = { start = -3, stop = 0, num = 4 }
wd_norm = [0.025, 0.05]

[optimizers.adamw]
lr = [0.001]
wd_norm = { start = -6, stop = -4, num = 3, base = 2 }
"""


def test_grid_is_the_full_product():
    spec = parse_spec(GOOD)
    assert spec.lr_values("sgd") == [0.125, 0.25, 0.5, 1.0]
    assert spec.wd_norm_values("adamw") == [2**-6, 2**-5, 2**-4]
    points = spec.points()
    # sgd: 2 schedules × 4 α × 2 λ × 2 budgets × 2 seeds; adamw: 2 × 1 × 3 × 2 × 2
    assert len(points) == 64 + 24
    assert len({p.key() for p in points}) == len(points)
    assert spec.study_grid_size("sgd") == 32
    cfg = spec.run_config(points[0])
    assert cfg["dataset"] == "digits" and cfg["optimizer"] == "sgd" and cfg["epochs"] in (2, 4)
    assert cfg["n_test"] is None and cfg["curve_test"] is None  # the data set's own test set, scored whole
    sized = parse_spec(GOOD.replace("budgets = [2, 4]", "budgets = [2, 4]\nn_test = 500\ncurve_test = 100"))
    assert {k: sized.run_config(points[0])[k] for k in ("n_test", "curve_test")} == {"n_test": 500, "curve_test": 100}


def test_examples_parse():
    for path in sorted((ROOT / "examples").glob("*.toml")):
        spec, _ = load_spec(path)
        assert spec.points(), path


@pytest.mark.parametrize(
    "edit, expected",
    [
        (("budgets = [2, 4]", "budgets = [2, 4]\ncolour = 3"), r"<spec>:\d+: colour: unknown key"),
        (("[optimizers.adamw]", "[optimizers.lamb]"), "optimizers: unknown optimizer 'lamb'"),
        (('name = "warm-restarts"', 'name = "linear"'), "schedules.* must be one of"),
        (("budgets = [2, 4]", "budgets = []"), "budgets: is empty"),
        (("budgets = [2, 4]", "budgets = [0]"), "budgets: budgets must be >= 1"),
        (("wd_norm = [0.025, 0.05]", "wd_norm = [0.0, 0.05]"), "wd_norm.*> 0"),
        (("wd_norm = [0.025, 0.05]", "wd_norm = []"), "wd_norm.*empty"),
        (("lr = [0.001]", "lr = { start = -3, stop = 0, num = 0 }"), "num"),
        (("t0 = 1", "t0 = -1"), "t0 must be"),
        (('dataset = "digits"', 'dataset = "svhn"'), "dataset: unknown data set 'svhn'"),
        (("budgets = [2, 4]", "budgets = [2, 4"), "not valid TOML.*line"),
        (('name = "t"', ""), "name: is required"),
        (("budgets = [2, 4]", "budgets = [2, 4]\nn_test = 0"), "n_test: .*greater than or equal to 1"),
        (("budgets = [2, 4]", "budgets = [2, 4]\ncurve_test = 1.5"), "curve_test"),
    ],
)
def test_bad_specs_give_one_line_naming_the_field(edit, expected):
    text = GOOD.replace(*edit)
    with pytest.raises(SpecError, match=expected) as info:
        parse_spec(text)
    assert "\n" not in str(info.value)


def test_unknown_key_error_carries_the_line(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD.replace("[optimizers.sgd]\n", "[optimizers.sgd]\nmomentun = 0.8\n"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    line = path.read_text().splitlines().index("momentun = 0.8") + 1
    assert str(info.value).startswith(f"{path}:{line}: optimizers.sgd.momentun: unknown key")


def test_cli_bad_spec_exit_2_and_nothing_written(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("budgets = [2, 4]", "budgets = [-1]"))
    db = tmp_path / "x.db"
    out = subprocess.run(BASIN + ["sweep", str(path), "--storage", f"sqlite:///{db}"], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "budgets" in out.stderr
    assert not db.exists()
    out = subprocess.run(BASIN + ["sweep", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_cli_dry_run_prints_the_grid_and_runs_nothing(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    out = subprocess.run(BASIN + ["sweep", str(path), "--dry-run", "--storage", f"sqlite:///{tmp_path}/d.db"],
                         capture_output=True, text=True, check=True)
    assert "88 grid points" in out.stdout and "packs:" in out.stdout and "t/sgd/cosine" in out.stdout and "t/adamw/warm-restarts" in out.stdout
    assert not (tmp_path / "d.db").exists()
