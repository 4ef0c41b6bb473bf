"""storage.evidence.landscape: the coupling's two estimates, their formulas, and their calibration by
simulation on planted landscapes (storage.evidence.simulate) at 1 and 3 seeds.

Calibration runs the real estimator (:func:`landscape.coupling`, the function ``storage.coupling``
calls) on ≥ 200 replicates per case; ``test_the_storage_path_gives_the_estimators_answer`` checks,
on replicates written through Optuna, that the storage path computes exactly that.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from storage import evidence as ev
from storage.evidence import landscape as L
from storage.evidence import simulate as S

REPS, N_BOOT = 200, 300


# ─── Formulas ────────────────────────────────────────────────────────────────────────────────────


def test_verdict_reads_the_interval_with_a_margin_around_each_prediction():
    assert L.slope_verdict((-1.2, -0.8)) == "coupled"
    assert L.slope_verdict((-0.95, -0.9)) == "coupled"  # within 0.25 of −1, far from 0
    assert L.slope_verdict((-0.2, 0.1)) == "decoupled"
    assert L.slope_verdict((0.05, 0.2)) == "decoupled"
    assert L.slope_verdict((-1.1, 0.1)) == "inconclusive"  # near both
    assert L.slope_verdict((-0.6, -0.4)) == "inconclusive"  # near neither
    assert L.slope_verdict((-0.74, -0.3)) == "inconclusive"
    assert L.slope_verdict(None) == "inconclusive"
    assert L.slope_verdict((math.nan, 0.0)) == "inconclusive"


def test_the_verdict_is_the_decided_estimates_when_they_agree():
    assert L.combine({"edge": "coupled", "valley": "coupled"}) == ("coupled", ("edge", "valley"))
    assert L.combine({"edge": "decoupled", "valley": "inconclusive"}) == ("decoupled", ("edge",))
    assert L.combine({"edge": "inconclusive", "valley": "coupled"}) == ("coupled", ("valley",))
    assert L.combine({"edge": "coupled", "valley": "decoupled"}) == ("inconclusive", ())
    assert L.combine({"edge": "inconclusive", "valley": "inconclusive"}) == ("inconclusive", ())


def test_the_valley_of_an_exact_quadratic_is_minus_h_uv_over_h_vv():
    u, v = np.log(2.0) * np.arange(7), np.log(2.0) * np.arange(8)
    U, V = np.meshgrid(u, v, indexing="ij")
    for s in (-1.0, -0.5, 0.0, 0.3):
        # e = 0.1·(v − s·u − 2)² + 0.05·u²: valley v*(u) = s·u + 2 exactly
        e = 0.1 * (V - s * U - 2) ** 2 + 0.05 * U**2
        got = L.valley(e, np.ones(e.shape, bool), u, v)
        assert got.slope == pytest.approx(s, abs=1e-9)
        assert got.curvature == pytest.approx(0.2, rel=1e-9)  # H_vv = 2·0.1
        assert got.line == pytest.approx(s * u + 2, abs=1e-9)
    assert L.valley(e, np.zeros(e.shape, bool), u, v) is None
    one_row = np.zeros(e.shape, bool)
    one_row[0] = True
    assert L.valley(e, one_row, u, v) is None  # a single α value: the u terms are not identifiable


def test_edges_are_the_last_crossing_of_the_rows_best_plus_tol():
    v = np.arange(5.0)
    rows = np.array([
        [0.05, 0.04, 0.05, 0.30, 0.90],  # crossing of 0.06 between cells 2 and 3: 2 + 0.01/0.25
        [0.04, 0.05, 0.05, 0.05, 0.05],  # never above 0.06: at the border, not inside
        [0.04, 0.10, 0.05, 0.09, np.nan],  # the last crossing counts (cell 2 is back below)
    ])
    e = L.edges(rows, v, 0.02)
    assert e.position[0] == pytest.approx(2 + 0.01 / 0.25)
    assert e.position[1] == 4 and not e.inside[1]
    assert e.position[2] == pytest.approx(2 + 0.01 / 0.04) and e.inside[2]
    assert e.best.tolist() == [1, 0, 0] and e.last.tolist() == [4, 4, 3]
    dead = np.zeros(rows.shape, bool)
    dead[0, 4] = True  # a diverged cell at chance is the cliff's far side, never the row's best
    assert L.edges(rows, v, 0.02, dead).position[0] == pytest.approx(2 + 0.01 / 0.25)


def test_a_panel_answer_is_json_ready_and_names_its_noise():
    rng = np.random.default_rng(3)
    P = S.panels("coupled-cliff", 3, 1, rng)[0]
    c = L.coupling(P, ev.seed_draws(P.seeds, 200, rng), rng)
    d = c.to_dict()
    json.dumps(d)
    assert c.sources == ("test set", "seeds")
    assert d["edge_rows"] == c.edge_rows.tolist() and c.n_edge_rows == int(c.edge_rows.sum()) >= 3
    assert c.verdict == "coupled" and "edge" in c.rests_on


# ─── The noise-free diagonal and flat ────────────────────────────────────────────────────


@pytest.mark.parametrize("k", [1, 3])
def test_the_noise_free_diagonal_is_coupled_and_the_noise_free_flat_plateau_decoupled(k):
    """λ* = 2^−2 … 2^−7 over six α rows (values recorded exactly; the bootstrap still redraws the test
    set): coupled, slope −1 ± 0.1; the decoupled cliff at a fixed λ_norm: decoupled, 0 ± 0.1."""
    rng = np.random.default_rng(4)
    for shape, verdict, truth in (("diagonal", "coupled", -1.0), ("decoupled-cliff", "decoupled", 0.0)):
        P = S.panels(shape, k, 1, rng, noise=False)[0]
        c = L.coupling(P, ev.seed_draws(P.seeds, 400, rng), rng)
        assert c.verdict == verdict, (shape, c.notes)
        for s in (c.argmin_slope, c.edge_slope, c.slope):
            assert s == pytest.approx(truth, abs=0.1)


def test_lambda_matters_is_a_chi_square_test_that_a_rows_cells_are_equal():
    """A row with no λ_norm effect is flagged at the test's level (5%, counted over 200 × 8 rows, 1 and 3
    seeds); every row with a cliff is flagged; a row with diverged and measured cells is flagged."""
    rng = np.random.default_rng(7)
    for k in (1, 3):
        flagged = [L.lambda_matters(P, np.ones(8, bool), 0.95) for P in S.panels("flat", k, 200, rng)]
        assert 0.02 <= np.mean(flagged) <= 0.08, k
    cliff = S.panels("decoupled-cliff", 1, 1, rng)[0]
    assert L.lambda_matters(cliff, np.ones(8, bool), 0.95).all()
    assert not L.lambda_matters(cliff, np.zeros(8, bool), 0.95).any()  # only the rows asked about


# ─── Calibration by simulation ───────────────────────────────────────────────────────────────────


def _simulate(shape: str, k: int, seed: int) -> list[L.LandscapeCoupling]:
    rng = np.random.default_rng(seed)
    return [L.coupling(P, ev.seed_draws(P.seeds, N_BOOT, rng), rng) for P in S.panels(shape, k, REPS, rng)]


def _coverage(results, name: str, truth: float) -> float:
    cis = [getattr(c, name) for c in results]
    return float(np.mean([ci is not None and ci[0] <= truth <= ci[1] for ci in cis]))


CASES = [(shape, k) for shape in ("coupled-bowl", "decoupled-bowl", "coupled-cliff", "decoupled-cliff",
                                  "decoupled-tilted") for k in (1, 3)]


@pytest.mark.parametrize("shape, k", CASES)
def test_calibration_right_verdicts_and_coverage(shape, k):
    """≥ 200 replicates: right verdicts ≥ 90%, the opposite verdict ≤ 1%, and where the planted slope is exact
    (bowls, cliffs) the λ_norm*(α) and edge intervals cover it in ≥ 90%. On the tilted shape the rows where the
    cliff cuts the optimum bias both (docs/evidence.md): the verdict must still be right."""
    truth = S.SHAPES[shape]
    expected = "coupled" if truth == -1.0 else "decoupled"
    opposite = {"coupled": "decoupled", "decoupled": "coupled"}[expected]
    results = _simulate(shape, k, 100 + k + 10 * list(S.SHAPES).index(shape))
    verdicts = [c.verdict for c in results]
    assert np.mean([v == expected for v in verdicts]) >= 0.90
    assert np.mean([v == opposite for v in verdicts]) <= 0.01
    if shape == "decoupled-tilted":
        return
    assert _coverage(results, "argmin_slope_ci", truth) >= 0.90
    assert _coverage(results, "edge_slope_ci", truth) >= 0.90
    if shape.endswith("bowl"):  # the quadratic surface is the right model of a bowl: it covers too
        assert _coverage(results, "slope_ci", truth) >= 0.90


@pytest.mark.parametrize("k", [1, 3])
def test_calibration_a_landscape_without_a_lambda_effect_is_inconclusive(k):
    results = _simulate("flat", k, 200 + k)
    assert np.mean([c.verdict == "inconclusive" for c in results]) >= 0.95
