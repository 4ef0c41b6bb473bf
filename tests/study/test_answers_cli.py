"""`basin best` and `basin export` end to end, on a small sweep written through the real write API."""

from __future__ import annotations

import csv
import io
import json
import math

import optuna
import pandas as pd
import pytest

from storage import open_storage
from storage.testing import scratch_schema
from tests.planted import write_panel
from study.cli import main

optuna.logging.set_verbosity(optuna.logging.WARNING)

SWEEP = "cli"
ALPHAS = [5e-4, 1e-3, 2e-3, 4e-3, 8e-3]
LAMBDAS = [0.0125, 0.025, 0.05, 0.1, 0.2]


def _write(url: str) -> None:
    rdb = open_storage(url)
    diag = lambda a, w, b, s: (0.05 + 0.02 * math.log2(a * w / (2e-3 * 0.05)) ** 2  # noqa: E731
                               + 0.001 * math.log2(a / 2e-3) ** 2)
    flat = lambda a, w, b, s: 0.04 + 0.02 * math.log2(w / 0.05) ** 2 + 0.001 * math.log2(a / 2e-3) ** 2  # noqa: E731
    big = dict(n_test=50_000)  # an ImageNet32-sized test set: the planted steps are distinguishable
    write_panel(rdb, sweep=SWEEP, optimizer="sgd", schedule="cosine", lrs=ALPHAS, wd_norms=LAMBDAS, budgets=[1],
                seeds=[0], error=diag, diverged=lambda a, w, b, s: a == 4e-3 and w == 0.1, **big)
    write_panel(rdb, sweep=SWEEP, optimizer="sgdw", schedule="cosine", lrs=ALPHAS, wd_norms=LAMBDAS, budgets=[1],
                seeds=[0], error=flat, fail=lambda a, w, b, s: a == 1e-3 and w == 0.1, **big)
    bowl = lambda top: lambda a, w, b, s: top / b ** 0.25 + 0.02 * math.log2(w / 0.05) ** 2  # noqa: E731
    write_panel(rdb, sweep=SWEEP, optimizer="adamw", schedule="cosine", lrs=[1e-3], wd_norms=LAMBDAS, budgets=[1, 4],
                seeds=[0], error=bowl(0.085), **big)
    write_panel(rdb, sweep=SWEEP, optimizer="adam", schedule="cosine", lrs=[1e-3], wd_norms=LAMBDAS, budgets=[1, 4],
                seeds=[0], error=bowl(0.1), **big)
    rdb.engine.dispose()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "basin.db"
    _write(f"sqlite:///{path}")
    return f"sqlite:///{path}"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_best_json_lists_the_optima(url, capsys):
    code, out, err = run(capsys, "best", "--storage", url, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) == 1 + 1 + 2 + 2  # sgd, sgdw, adamw ×2 T, adam ×2 T
    for row in rows:
        assert {"sweep", "optimizer", "schedule", "budget", "lr", "wd_norm", "wd", "test_error", "test_error_std",
                "n_seeds", "n_complete", "n_failed", "n_diverged"} <= set(row)
    sgd = next(r for r in rows if r["optimizer"] == "sgd")
    assert (sgd["lr"], sgd["wd_norm"], sgd["n_diverged"]) == (2e-3, 0.05, 1)
    assert sgd["test_error"] == pytest.approx(0.05) and sgd["test_error_std"] is None  # one seed: null, not NaN
    sgdw = next(r for r in rows if r["optimizer"] == "sgdw")
    assert (sgdw["n_complete"], sgdw["n_failed"]) == (24, 1)


def test_best_csv_parses_and_filters(url, capsys):
    code, out, _ = run(capsys, "best", "--storage", url, "--sweep", SWEEP, "--optimizer", "sgd,sgdw", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["optimizer"] for r in rows) == ["sgd", "sgdw"]
    assert float(rows[0]["test_error"]) > 0


def test_best_table_with_notes_and_headline(url, capsys):
    code, out, _ = run(capsys, "best", "--storage", url)
    assert code == 0
    assert "optimizer" in out and "test err %" in out and "5.00" in out and "95% interval" in out
    assert "adamw vs adam" in out and "+15.0%" in out and "better with decoupled decay" in out
    assert "naive: selected and reported on the same test errors" in out and "bootstrap over test set" in out
    assert "sgdw vs sgd" in out
    assert "grid must grow" in out or "single α value" in out  # adam/adamw: one cell per panel


def test_headline_json(url, capsys):
    code, out, _ = run(capsys, "best", "--storage", url, "--headline", "--json")
    rows = json.loads(out)
    assert code == 0 and {(r["decoupled"], r["budget"]) for r in rows} == {("adamw", 1), ("adamw", 4), ("sgdw", 1)}
    assert all(r["improvement"] == pytest.approx(0.15) for r in rows if r["decoupled"] == "adamw")


def test_by_budget(url, capsys):
    code, out, _ = run(capsys, "best", "--storage", url, "--by", "budget", "--optimizer", "adamw")
    assert code == 0 and "raw λ* ∝ T^-0.50" in out and "λ_norm* ∝ T^+0.00" in out and "favours sqrt_rule" in out
    assert "train err %" in out
    code, out, _ = run(capsys, "best", "--storage", url, "--by", "budget", "--json")
    rows = json.loads(out)
    adamw = [r for r in rows if r["optimizer"] == "adamw"]
    assert [r["budget"] for r in adamw] == [1, 4] and adamw[0]["raw_exponent"] == pytest.approx(-0.5)
    assert adamw[0]["k_lo"] < 0 < adamw[0]["k_hi"] and adamw[0]["lambda_norm_lo"] <= 0.05 <= adamw[0]["lambda_norm_hi"]


def test_coupling_text_and_json(url, capsys):
    code, out, _ = run(capsys, "best", "--storage", url, "--coupling", "--boot", "50", "--tol", "0.01")
    assert code == 0
    assert f"{SWEEP}/sgd/cosine T=1: coupled" in out and f"{SWEEP}/sgdw/cosine T=1: decoupled" in out
    assert f"{SWEEP}/sgd/cosine T=1: coupled (rests on argmin + edge + valley)" in out
    assert "λ* slope" in out and "edge slope" in out and "valley slope" in out and "only 1 α value(s)" in out
    assert "within 0.01 of each row's best" in out  # --tol reaches the edge
    code, out, _ = run(capsys, "best", "--storage", url, "--coupling", "--json")
    panels = {(p["optimizer"], p["budget"]): p for p in json.loads(out)}
    assert panels[("sgd", 1)]["slope"] == pytest.approx(-1.0) and panels[("sgdw", 1)]["slope"] == pytest.approx(0.0)
    assert panels[("adam", 4)]["verdict"] == "inconclusive" and panels[("adam", 4)]["slope"] is None
    assert panels[("sgd", 1)]["slope_ci"][0] < -1 < panels[("sgd", 1)]["slope_ci"][1] < 0
    assert panels[("sgd", 1)]["edge_slope"] == pytest.approx(-1.0) and panels[("sgd", 1)]["edge_verdict"] == "coupled"
    assert panels[("sgd", 1)]["edge_slope_ci"][0] < -1 < panels[("sgd", 1)]["edge_slope_ci"][1]
    assert panels[("sgd", 1)]["tol"] == 0.02


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--sweep", "nope"], "unknown sweep 'nope'; sweeps here: cli"),
        (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        (["--tol", "0.1"], "--tol applies to --coupling only"),
        (["--boot", "0"], "argument --boot: expected an integer ≥ 1"),
        (["--coupling", "--tol", "-1"], "argument --tol: expected a number ≥ 0"),
        (["--json", "--csv"], "not allowed with argument"),
        (["--by", "seed"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(url, capsys, argv, needle):
    try:
        code = main(["best", "--storage", url, *argv])
    except SystemExit as exc:  # argparse's own checks exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    assert needle in err and err.count("\n") == 1 and out == ""


def test_missing_and_empty_storage(tmp_path, capsys):
    code, _, err = run(capsys, "best", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 1 and "no database at" in err and err.count("\n") == 1
    assert not (tmp_path / "none.db").exists()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    open_storage(empty).engine.dispose()
    code, _, err = run(capsys, "best", "--storage", empty, "--json")
    assert code == 1 and "no Basin sweep recorded" in err
    code, _, err = run(capsys, "best", "--storage", "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2")
    assert code == 2 and "cannot open storage" in err and err.count("\n") == 1


def test_default_storage_from_environment(url, capsys, monkeypatch):
    monkeypatch.setenv("BASIN_STORAGE", url)
    code, out, _ = run(capsys, "best", "--json", "--schedule", "cosine")
    assert code == 0 and len(json.loads(out)) == 6


def test_export_csv_and_parquet(url, tmp_path, capsys):
    out_csv = tmp_path / "trials.csv"
    code, out, err = run(capsys, "export", "--storage", url, "--sweep", SWEEP, "--format", "csv", "--out", str(out_csv))
    assert code == 0, err and str(out_csv) in out
    frame = pd.read_csv(out_csv)
    assert len(frame) == 25 + 25 + 10 + 10
    assert json.loads(frame.loc[frame["state"] == "COMPLETE", "train_loss"].iloc[0])
    out_pq = tmp_path / "trials.parquet"
    code, _, _ = run(capsys, "export", "--storage", url, "--out", str(out_pq))  # format from the suffix
    assert code == 0 and len(pd.read_parquet(out_pq)) == 70


def test_export_bad_input_writes_nothing(url, tmp_path, capsys):
    target = tmp_path / "x.parquet"
    code, _, err = run(capsys, "export", "--storage", url, "--format", "csv", "--out", str(target))
    assert code == 2 and "make them agree" in err
    code, _, err = run(capsys, "export", "--storage", url, "--out", str(tmp_path / "no" / "x.csv"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "export", "--storage", url, "--sweep", "nope", "--out", str(tmp_path / "y.csv"))
    assert code == 2 and "unknown sweep" in err
    code, _, err = run(capsys, "export", "--storage", url, "--out", str(tmp_path / "z.txt"))
    assert code == 2 and "--format csv|parquet" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as info:
        main(["export", "--storage", url])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_best_json_on_postgresql(capsys, pg_url):
    with scratch_schema(pg_url) as pg_url:
        rdb = open_storage(pg_url)
        write_panel(rdb, sweep=SWEEP, optimizer="adamw", schedule="cosine", lrs=[1e-3], wd_norms=[0.05], budgets=[1, 4],
                    seeds=[0], error=lambda a, w, b, s: 0.085 / b ** 0.25)
        write_panel(rdb, sweep=SWEEP, optimizer="adam", schedule="cosine", lrs=[1e-3], wd_norms=[0.05], budgets=[1, 4],
                    seeds=[0], error=lambda a, w, b, s: 0.1 / b ** 0.25)
        rdb.engine.dispose()
        code, out, err = run(capsys, "best", "--storage", pg_url, "--json")
        assert code == 0, err
        assert len(json.loads(out)) == 4
        code, out, _ = run(capsys, "best", "--storage", pg_url, "--headline", "--json")
        assert all(r["improvement"] == pytest.approx(0.15) for r in json.loads(out))


def test_basin_best_reads_once_for_the_table_and_the_headline(url):
    """`basin best` prints storage.best and storage.headline; it gets both from one read and one bootstrap."""
    import pandas as pd

    import storage

    table, heads = storage.best_and_headline(url)
    pd.testing.assert_frame_equal(table, storage.best(url))
    pd.testing.assert_frame_equal(heads, storage.headline(url))
    assert storage.best_and_headline(url, optimizer="adamw")[1] is None


def test_the_budgets_page_reads_once_for_its_heatmaps_and_its_table(url):
    """storage.budget_view: every budget's panels and best_by_budget's table from one read and one bootstrap."""
    import pandas as pd

    import storage

    panels, table = storage.budget_view(url, SWEEP, "cosine", ["adam", "adamw", "sgdw"])
    pd.testing.assert_frame_equal(table, storage.best_by_budget(url, SWEEP, ["adam", "adamw", "sgdw"], "cosine"))
    assert sorted(panels) == [1, 4] and set(panels[4]) == {"adam", "adamw", "sgdw"}
    assert panels[1]["adamw"].has_data and panels[1]["adamw"].coupling is not None
    assert not panels[4]["sgdw"].has_data and panels[4]["sgdw"].notes  # no sgdw run at T = 4: an empty panel, named
    for b in (1, 4):  # every budget's heatmap has the study's whole axes, so the columns line up
        assert set(panels[b]["adamw"].grid["wd_norm"].round(12)) == set(pd.Series(LAMBDAS).round(12))


def test_a_failing_coupling_fit_costs_only_its_own_panel(url, monkeypatch):
    """One panel's coupling fit raising leaves every other panel's coupling, and says why on that panel."""
    import storage
    from storage.evidence import landscape

    real = landscape.coupling

    def coupling(panel, *args, **kw):
        if panel.wd_norms.size and panel.alphas.size == 5:  # the two 5 × 5 panels (sgd, sgdw) fail
            raise FloatingPointError("planted failure")
        return real(panel, *args, **kw)

    monkeypatch.setattr(landscape, "coupling", coupling)
    panels = storage.figure2_panels(url, SWEEP, "cosine", 1, ["sgd", "adamw"])
    assert panels["sgd"].coupling is None and "coupling fit unavailable (FloatingPointError" in panels["sgd"].notes[0]
    assert panels["sgd"].best is not None and panels["sgd"].has_data
    assert panels["adamw"].coupling is not None and not panels["adamw"].notes


@pytest.mark.parametrize("value", ["two", "0"])
def test_best_says_a_bad_basin_threads_in_one_line(url, monkeypatch, capsys, value):
    """$BASIN_THREADS (storage.threads) read when the panels are answered: a bad value is one line, exit 2."""
    monkeypatch.setenv("BASIN_THREADS", value)
    assert main(["best", "--storage", url, "--sweep", SWEEP]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"BASIN_THREADS={value!r}" in err and "set it to 1 or more" in err, err
