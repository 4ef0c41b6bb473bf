"""`basin reproduce --no-run` on planted databases whose truths are known: the verdicts follow them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import storage
from study.cli import main
from study.reproduce import load_preset
from tests.planted import raw_wd, study_attrs, write_panel

PRESET = Path(__file__).resolve().parents[2] / "examples" / "reproduce" / "quick.toml"
A = [2.0**k for k in range(-9, -3)]  # 6 α
L = [2.0**k for k in range(-6, 0)]  # 6 λ_norm
SEEDS = [0, 1, 2]
BIG = dict(n_test=20_000)  # distinguishable planted steps; the noise model is tested in tests/storage


def _figure2(rdb, name: str, *, truth: str) -> None:
    """Coupled L2 basins and decoupled ones ("paper"), or the reverse ("reversed"); AdamW 15% better."""

    def bowl(opt):
        coupled = (opt in ("sgd", "adam")) == (truth == "paper")
        floor = {"sgd": 0.06, "sgdw": 0.051, "adam": 0.07, "adamw": 0.0595}[opt]

        def error(a, w, b, s):
            la, lw = math.log2(a) + 6.5, math.log2(w) + 3.5
            d = (la + lw) if coupled else lw
            return floor + 0.01 * d * d + 0.001 * la * la + 0.0005 * s

        return error

    for opt in ("sgd", "sgdw", "adam", "adamw"):
        write_panel(rdb, sweep=name, optimizer=opt, schedule="cosine", lrs=A, wd_norms=L, budgets=[16], seeds=SEEDS,
                    error=bowl(opt), **BIG)


def _budgets(rdb, name: str, *, fits: bool, k: float = 0.0) -> None:
    """λ_norm* = 2^-3 · (T/16)^k (k = 0: the √ rule); train error 0.3% (fits) or 8% (under-fits)."""
    for opt, lr in (("sgdw", 0.5), ("adamw", 2.0**-7)):
        write_panel(rdb, sweep=name, optimizer=opt, schedule="cosine", lrs=[lr], wd_norms=L, budgets=[16, 32, 64],
                    seeds=SEEDS, error=lambda a, w, b, s: 0.03 + 0.01 * (math.log2(w) + 3 - k * math.log2(b / 16)) ** 2
                    + 0.1 / b,
                    train_final=0.003 if fits else 0.08, **BIG)


def _restarts(rdb, name: str) -> None:
    """Warm restarts reach 6% at their first restart (epoch 2); the plain cosine curve needs epoch 12."""
    budget = 30
    cosine = [0.5 * math.exp(-e / 6) + 0.02 for e in range(1, budget + 1)]  # ≤ 6% from epoch ~12 on
    restarts = [0.06 if e == 2 else (0.2 if e == 1 else 0.05) for e in range(1, budget + 1)]
    for opt in ("sgdw", "adamw"):
        for sched, curve, ends in (("cosine", cosine, [budget]), ("warm-restarts", restarts, [2, 6, 14, 30])):
            study = storage.ensure_study(rdb, sweep=name, optimizer=opt, schedule=sched,
                                         attrs=study_attrs(grid_size=3, **BIG))
            dists = storage.grid_distributions([0.5], [0.125], [budget], SEEDS)
            for s in SEEDS:
                wd = raw_wd(0.125, budget)
                attrs = {"train_loss": [0.1] * budget, "train_error": [0.01] * budget, "test_error": curve,
                         "test_loss": [0.2] * budget, "eta": [0.5] * budget, "wd_per_epoch": [wd] * budget,
                         "diverged": False, "wd": wd, "seconds": 1.0, "node": "n", "device": "cpu",
                         "code_version": "test", "restart_epochs": ends}
                storage.record_trial(study, storage.GridPoint(opt, sched, 0.5, 0.125, budget, s), dists,
                                     state="COMPLETE", value=curve[ends[-1] - 1],
                                     intermediate=dict(enumerate(curve, 1)), user_attrs=attrs)


def _database(tmp_path, *, truth: str, fits: bool, k: float = 0.0) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    preset = load_preset(PRESET)
    rdb = storage.open_storage(url)
    _figure2(rdb, preset.specs["figure2"][0].name, truth=truth)
    _budgets(rdb, preset.specs["budgets"][0].name, fits=fits, k=k)
    _restarts(rdb, preset.specs["restarts"][0].name)
    rdb.engine.dispose()
    return url


def _verdicts(capsys, url: str) -> dict[str, str]:
    assert main(["reproduce", "--no-run", "--storage", url, "--json", "--boot", "300"]) == 0
    return {c["claim"]: c["verdict"] for c in json.loads(capsys.readouterr().out)}


def test_the_paper_planted_is_reproduced(tmp_path, capsys):
    url = _database(tmp_path, truth="paper", fits=True)
    v = _verdicts(capsys, url)
    assert v["Figure 2: the SGD+L2 basin is coupled"] == "reproduced"
    assert v["Figure 2: the AdamW basin is decoupled"] == "reproduced"
    assert v["AdamW beats Adam+L2"] == "reproduced" and v["SGDW beats SGD+L2"] == "reproduced"
    assert v["Appendix B.1: λ_norm* constant across budgets (AdamW)"] == "reproduced"
    assert v["Figure 4: SGDW with warm restarts is ahead at its first restart"] == "reproduced"
    assert main(["reproduce", "--no-run", "--storage", url, "--markdown", "--boot", "200"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("| claim | the paper |") and "**reproduced**" in md


def test_the_opposite_truth_is_not_reproduced_and_under_fitting_is_inconclusive(tmp_path, capsys):
    v = _verdicts(capsys, _database(tmp_path, truth="reversed", fits=False))
    assert v["Figure 2: the SGD+L2 basin is coupled"] == "not reproduced"
    assert v["Figure 2: the SGDW basin is decoupled"] == "not reproduced"
    assert v["Appendix B.1: λ_norm* constant across budgets (SGDW)"] == "inconclusive"  # the runs do not fit


def test_a_budget_exponent_whose_interval_excludes_zero_is_not_reproduced(tmp_path, capsys):
    """λ_norm* ∝ T^+½ (raw λ* flat: τ fixed in epochs), runs that fit: the √ rule's k = 0 is excluded."""
    v = _verdicts(capsys, _database(tmp_path, truth="paper", fits=True, k=0.5))
    assert v["Appendix B.1: λ_norm* constant across budgets (AdamW)"] == "not reproduced"
    assert v["Appendix B.1: λ_norm* constant across budgets (SGDW)"] == "not reproduced"


def test_an_empty_database_is_inconclusive_and_a_bad_preset_one_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    storage.open_storage(url).engine.dispose()
    assert main(["reproduce", "--no-run", "--storage", url, "--json"]) == 0  # nothing recorded: nothing concluded
    claims = json.loads(capsys.readouterr().out)
    assert claims and all(c["verdict"] == "inconclusive" and "no results yet" in c["notes"] for c in claims)
    bad = tmp_path / "p.toml"
    bad.write_text('figure2 = "nope.toml"\n')
    assert main(["reproduce", "--no-run", "--preset", str(bad), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing budgets, restarts" in err
