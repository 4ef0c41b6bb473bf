"""Adaptive seeds, storage side: the cells in doubt, one-seed cells borrowing the panel's seed spread,
and adaptive panels deciding as the full grid does on planted landscapes (storage.evidence.doubt,
storage.evidence.noise, storage.doubt)."""

from __future__ import annotations

import numpy as np
import pytest

import storage
from storage import evidence as ev
from storage.doubt import in_doubt
from storage.evidence import doubt as D
from storage.evidence import landscape as L
from storage.evidence import noise
from storage.evidence import simulate as S
from tests.planted import write_panel


def _first_seed(P: ev.Panel) -> ev.Panel:
    keep = np.arange(P.E.shape[1])[None, :] == 0
    return ev.Panel(np.where(keep, P.E, np.nan), P.fixed & keep, P.n_test, P.alphas, P.wd_norms, P.seeds,
                    chance=P.chance)


def test_doubt_holds_the_plausible_optima_each_basin_rows_best_cell_and_its_edge():
    P = _first_seed(S.panels("coupled-cliff", 3, 1, np.random.default_rng(0), noise=False)[0])
    rng = np.random.default_rng(1)
    draws = ev.seed_draws(P.seeds, 200, rng)
    cells, c = ev.cell_evidence(P, draws, rng), L.coupling(P, draws, rng)
    for radius in (0, 1):
        mask = P.grid(D.doubt_cells(P, cells, basin=c.basin, edge_lo=c.edge_lo, edge_hi=c.edge_hi, radius=radius))
        means = P.grid(P.means)
        assert mask.ravel()[cells.plausible].all()
        for i in np.flatnonzero(c.basin):
            b = int(np.nanargmin(means[i]))
            assert mask[i, max(b - radius, 0):b + radius + 1].all()
            if np.isfinite(c.edge[i]) and c.edge_rows[i]:  # the cells the edge is interpolated between
                j = int(np.floor(np.interp(np.log(c.edge[i]), np.log(P.wd_norms), np.arange(8))))
                assert mask[i, j] and mask[i, min(j + 1, 7)]
        assert not mask[~c.basin].any()  # rows outside the basin: no doubt of their own
        if radius == 0:
            assert mask.sum() < 0.5 * mask.size  # the doubt is where the answers are, not everywhere
    wider = D.doubt_cells(P, cells, basin=c.basin, edge_lo=c.edge_lo, edge_hi=c.edge_hi, radius=2)
    assert wider.sum() > mask.sum() and (wider | mask.ravel()).sum() == wider.sum()
    with pytest.raises(ValueError, match="radius"):
        D.doubt_cells(P, cells, radius=-1)


def test_next_step_runs_missing_seeds_then_widens_while_undecided_then_stops():
    assert D.next_step(3, False, 0, 2)[0] == "run"
    assert D.next_step(3, True, 0, 2)[0] == "run"
    assert D.next_step(0, True, 0, 2)[0] == "stop"
    assert D.next_step(0, False, 0, 2) == ("widen", "a verdict is undecided: the window widens to ±1 columns")
    assert D.next_step(0, False, 2, 2)[0] == "stop"


def test_one_seed_cells_of_a_mixed_panel_borrow_the_seed_spread_of_their_neighbours_in_error():
    """1,000 cells at p = 0.05, seed sd σ = 0.01, n_test 1,000: half with 3 seeds, half with 1. The one-seed
    cells' intervals cover p at the nominal rate only because they borrow σ̂ (test noise alone: 0.74)."""
    rng = np.random.default_rng(5)
    p, sigma, n_test = 0.05, 0.01, 1000
    runs = p + sigma * rng.standard_normal((1000, 3))
    E = rng.binomial(n_test, np.clip(runs, 0, 1)) / n_test
    E[500:, 1:] = np.nan
    fixed = np.zeros(E.shape, bool)
    borrowed = noise.borrowed_seed_sd(E, fixed, n_test)
    sd = borrowed["variance"]
    assert np.all(sd[:500] == 0) and 0.6 * sigma < np.median(sd[500:]) < 1.4 * sigma
    assert np.all(borrowed["t"][500:] > sd[500:])  # t on the 12 degrees of freedom of 6 cells
    draws = ev.seed_draws(range(3), 1000, rng)
    for expand, lo_cov in (("t", 0.92), ("variance", 0.90)):
        lo, hi = ev.percentile_interval(ev.cell_mean_draws(E, fixed, n_test, draws.columns(range(3)), rng, expand=expand))
        single = (lo[500:] <= p) & (p <= hi[500:])
        assert lo_cov <= single.mean() <= 0.99, (expand, single.mean())
    alone = ev.cell_mean_draws(E[500:, :1], fixed[500:, :1], n_test, ev.seed_draws([0], 1000, rng).columns([0]), rng)
    lo, hi = ev.percentile_interval(alone)
    assert ((lo <= p) & (p <= hi)).mean() < 0.8  # the same runs alone: test noise only (expected 0.74)
    # a cliff's unstable cells (σ = 0.05 at 30%) do not lend their spread to the plateau (σ = 0.002 at 3%)
    plateau = 0.03 + 0.002 * rng.standard_normal((40, 3))
    cliff = 0.3 + 0.05 * rng.standard_normal((20, 3))
    mixed = np.vstack([plateau, cliff, np.c_[np.full(10, 0.03), np.full((10, 2), np.nan)]])
    lent = noise.borrowed_seed_sd(mixed, np.zeros(mixed.shape, bool), None)["variance"][60:]
    assert np.all((lent > 0.001) & (lent < 0.004)), lent
    # nothing to borrow from, or nobody to borrow: unchanged
    assert noise.borrowed_seed_sd(E[500:], fixed[500:], n_test) is None
    assert noise.borrowed_seed_sd(E[:500], fixed[:500], n_test) is None


@pytest.mark.parametrize("n_test, sigma", [(1000, 0.005), (20_000, 0.0015)])
def test_adaptive_panels_decide_as_the_full_grid_does_on_planted_landscapes(n_test, sigma):
    """The rounds of study.adaptive emulated on planted 3-seed panels (storage.evidence.simulate.adaptive):
    the verdict equals the full grid's, is right, never opposite, with ≤ 70% of the runs (a flat
    landscape, where the doubt is everywhere, stays inconclusive)."""
    reps = 12
    for shape in ("coupled-bowl", "decoupled-bowl", "coupled-cliff", "decoupled-tilted", "flat"):
        rng = np.random.default_rng([n_test, len(shape)])
        truth = S.SHAPES[shape]
        want = {-1.0: "coupled", 0.0: "decoupled", None: "inconclusive"}[truth]
        agree, right, runs = [], [], []
        for P in S.panels(shape, 3, reps, rng, n_test=n_test, sigma=sigma):
            draws = ev.seed_draws(P.seeds, 200, rng)
            full = L.coupling(P, draws, rng).verdict
            recorded, n = S.adaptive(P, 200, rng)
            got = L.coupling(recorded, draws, rng).verdict
            agree.append(got == full)
            right.append(got == want)
            runs.append(n / P.E.size)
        assert np.mean(agree) >= 0.9 and np.mean(right) >= 0.9, (shape, agree, right)
        if truth is not None:
            assert np.mean(runs) <= 0.7, (shape, np.mean(runs))


def test_the_storage_view_reads_doubt_and_verdicts_through_optuna(tmp_path):
    """A coupled panel written through Optuna with one seed per cell: storage.doubt finds the same
    cells as the rule on the panel, with the panel's verdict; after the cells in doubt get their
    other seeds, the answers name seeds among their noise sources."""
    url = f"sqlite:///{tmp_path}/d.db"
    rdb = storage.open_storage(url)
    p, _ = S.truth("coupled-bowl")
    lrs, wds = list(S.ALPHAS), list(S.WDS)
    cell = {(float(a), float(w)): p[i, j] for i, a in enumerate(lrs) for j, w in enumerate(wds)}
    err = lambda lr, wd, T, seed: round(cell[(lr, wd)] + 0.002 * (seed - 1), 4)  # noqa: E731
    write_panel(rdb, sweep="ad", optimizer="sgd", schedule="cosine", lrs=lrs, wd_norms=wds, budgets=[4],
                seeds=[0, 1, 2], error=err, skip=lambda lr, wd, T, seed: seed > 0, n_test=20000)
    found = in_doubt(rdb, "ad")
    assert found.verdicts == {("sgd", "cosine", 4): "coupled"} and found.decided
    assert 8 <= len(found.cells) <= 32 and set(found.cells["n_seeds"]) == {1}
    best = storage.best(rdb, sweep="ad")
    assert best["sources"].iloc[0] == "test set"
    chosen = {(round(r.lr, 12), round(r.wd_norm, 12)) for r in found.cells.itertuples()}
    write_panel(rdb, sweep="ad", optimizer="sgd", schedule="cosine", lrs=lrs, wd_norms=wds, budgets=[4],
                seeds=[0, 1, 2], error=err, n_test=20000,
                skip=lambda lr, wd, T, seed: seed == 0 or (round(lr, 12), round(wd, 12)) not in chosen)
    again = in_doubt(rdb, "ad")
    assert again.decided and set(again.cells["n_seeds"]) <= {1, 3}
    assert "seeds" in storage.best(rdb, sweep="ad")["sources"].iloc[0]
