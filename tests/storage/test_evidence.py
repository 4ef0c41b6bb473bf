"""storage.evidence: formulas, and coverage / verdict / bias measured by simulation on planted landscapes.

Every simulation is vectorised over repetitions (no Python loop over bootstrap draws) and seeded, so
the file is deterministic and runs in well under a minute on one core. Planted grids: 8 × 8, α and
λ_norm in powers of 2, n_test = 1000, true errors e(α_i, λ_j) = 0.04 + 0.002·(i − 3.5)² + b·(j − j*(i))²
with b = 0.01 (neighbouring cells near the minimum differ by ~1 point of error).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from storage import evidence as ev
from storage.evidence import noise
from tests.storage.reference_noise import value_draws

N_TEST = 1000
ALPHAS = 2.0 ** np.arange(-10, -2)
WDS = 2.0 ** np.arange(-8, 0)
I, J = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
CURVATURE = 0.01


def landscape(kind: str, b: float = CURVATURE, offset: float = 0.3) -> np.ndarray:
    """True seed-mean errors (64,) of a planted panel: coupled (slope −1), decoupled (0) or flat."""
    star = {"coupled": 6 + offset - I, "decoupled": 3 + offset + 0 * I, "flat": None}[kind]
    p = 0.04 + 0.002 * (I - 3.5) ** 2 + (0 if star is None else b * (J - star) ** 2)
    return p.ravel().astype(float)


def measure(p: np.ndarray, k: int, rng: np.random.Generator, sigma: float = 0.005, shape=()) -> np.ndarray:
    """Errors (*shape, n_cells, k): seed noise σ per run (k ≥ 2) plus binomial test noise."""
    runs = np.broadcast_to(p[:, None], (*shape, p.size, k))
    if k > 1:
        runs = runs + sigma * rng.standard_normal(runs.shape)
    return rng.binomial(N_TEST, np.clip(runs, 0, 1)) / N_TEST


def panel(E, seeds=None, fixed=None, n_test=N_TEST, budget=None, alphas=ALPHAS, wds=WDS) -> ev.Panel:
    seeds = tuple(range(E.shape[1])) if seeds is None else seeds
    return ev.Panel(E, np.zeros(E.shape, bool) if fixed is None else fixed, n_test, alphas, wds, seeds, budget)


def covers(lo, hi, truth) -> np.ndarray:
    return (lo <= truth) & (truth <= hi)


# ─── Noise model ─────────────────────────────────────────────────────────────────────────────────


def test_binomial_draws_have_the_binomial_mean_and_variance():
    rng = np.random.default_rng(1)
    e = np.array([0.02, 0.05, 0.1, 0.5])
    sd = ev.seed_draws([0], 20_000, rng)
    draws = ev.cell_mean_draws(e[:, None], np.zeros((4, 1), bool), N_TEST, sd.columns([0]), rng)
    var = e * (1 - e) / N_TEST
    assert np.all(np.abs(draws.mean(0) - e) < 4 * np.sqrt(var / 20_000))
    assert np.allclose(draws.var(0), var, rtol=0.05)
    # below NORMAL_MIN_VAR (count variance n·p(1 − p)) the binomial itself: counts out of n_test;
    # above it (p = 0.5 here) its Normal approximation, same mean and variance
    exact = N_TEST * e * (1 - e) < noise.NORMAL_MIN_VAR
    assert exact.tolist() == [True, True, True, False]
    assert np.allclose(draws[:, exact] * N_TEST, np.round(draws[:, exact] * N_TEST))
    assert not np.allclose(draws[:, ~exact] * N_TEST, np.round(draws[:, ~exact] * N_TEST))


def test_zero_error_gets_a_jeffreys_floor_and_fixed_values_no_noise():
    rng = np.random.default_rng(2)
    E = np.array([[0.0], [1.0], [0.9], [0.05]])
    fixed = np.array([[False], [False], [True], [False]])
    sd = ev.seed_draws([0], 4000, rng)
    lo, hi = ev.percentile_interval(ev.cell_mean_draws(E, fixed, N_TEST, sd.columns([0]), rng))
    assert lo[0] == 0 and 0 < hi[0] <= 0.003  # e = 0 on 1000 examples: [0, 0.002], not [0, 0]
    assert lo[1] >= 0.997 and hi[1] == 1
    assert lo[2] == hi[2] == 0.9  # a diverged run at chance: no test noise
    no_test = ev.cell_mean_draws(E, fixed, None, sd.columns([0]), rng)  # n_test unknown: no noise at all
    assert np.all(no_test == E[:, 0])
    P = panel(np.tile(E, (16, 1)), fixed=np.tile(fixed, (16, 1)))
    assert ev.noise_sources(P) == ("test set",)
    assert ev.noise_sources(panel(np.tile(E, (16, 1)), n_test=None, fixed=np.tile(fixed, (16, 1)))) == ()


def test_t_quantile_matches_tables():
    for df, t in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (30, 2.0423)):
        assert ev.t_quantile(0.95, df) == pytest.approx(t, abs=5e-4)
    assert ev.t_quantile(0.90, 2) == pytest.approx(2.9200, abs=5e-4)


def test_paired_seed_resampling_uses_the_same_labels_in_every_cell_and_panel():
    rng = np.random.default_rng(3)
    sd = ev.seed_draws([7, 3, 5, 9], 300, rng)
    assert sd.labels.tolist() == [3, 5, 7, 9]
    # Panel A has labels (3, 5, 7, 9) in a shuffled column order; panel B only (9, 5). Each value
    # encodes its label (+ a per-cell offset), and there is no test noise (n_test None).
    for labels in ((9, 3, 7, 5), (9, 5)):
        off = np.linspace(0, 0.5, 6)[:, None]
        E = off + 0.01 * np.array(labels, float)[None, :]
        vals = value_draws(E, np.zeros(E.shape, bool), None, sd.columns(labels), rng, expand="variance")
        centre, gain = ev.seed_gain(E, np.zeros(E.shape, bool), None, expand="variance")
        decoded = np.round(((vals - centre[:, None]) / gain[:, None] + centre[:, None] - off[None]) / 0.01)
        expected = np.where(np.isin(sd.chosen, labels), sd.chosen, np.nan)
        have = ~np.isnan(expected).all(1)  # draws where the panel has at least one chosen label
        for c in range(6):  # every cell saw the same labels in the same slots
            assert np.array_equal(decoded[have, c], expected[have], equal_nan=True)
        # draws with none of the panel's labels: each cell resamples its own seeds
        own = decoded[~have]
        assert np.isin(own[np.isfinite(own)], labels).all()
    with pytest.raises(ValueError, match="not in this draw"):
        sd.columns([1, 3])


def test_a_cell_missing_seeds_averages_the_chosen_seeds_it_has():
    rng = np.random.default_rng(4)
    sd = ev.seed_draws([0, 1, 2], 200, rng)
    E = np.array([[0.1, 0.2, 0.3], [0.1, np.nan, 0.3]])
    vals = value_draws(E, np.zeros(E.shape, bool), None, sd.columns([0, 1, 2]), rng, expand="variance")
    means = ev.cell_mean_draws(E, np.zeros(E.shape, bool), None, sd.columns([0, 1, 2]), rng, expand="variance")
    some = ~(sd.chosen == 1).all(1)  # draws that chose a label cell 1 has
    assert np.all(np.isnan(vals[some, 1, :]) == (sd.chosen[some] == 1))
    assert np.isfinite(vals[~some, 1]).any(-1).all()  # only label 1 chosen: cell 1 resampled its own
    assert np.allclose(means[some, 1], np.nanmean(vals[some, 1], -1))


# ─── Coverage of cell intervals (truth: the population error) ────────────────────────────────────


@pytest.mark.parametrize("p", [0.02, 0.05, 0.1])
def test_coverage_one_seed(p):
    rng = np.random.default_rng(10)
    E = measure(np.full(1000, p), 1, rng)  # 1000 repetitions = 1000 independent cells
    sd = ev.seed_draws([0], 1000, rng)
    lo, hi = ev.percentile_interval(ev.cell_mean_draws(E, np.zeros(E.shape, bool), N_TEST, sd.columns([0]), rng))
    assert 0.90 <= covers(lo, hi, p).mean() <= 0.99
    assert np.all(hi > lo)


@pytest.mark.parametrize("p, sigma", [(0.02, 0.003), (0.02, 0.01), (0.1, 0.003), (0.1, 0.01)])
def test_coverage_three_seeds(p, sigma):
    rng = np.random.default_rng(11)
    E = measure(np.full(2000, p), 3, rng, sigma)
    sd = ev.seed_draws(range(3), 1000, rng)
    cols = sd.columns(range(3))
    fixed = np.zeros(E.shape, bool)
    lo, hi = ev.percentile_interval(ev.cell_mean_draws(E, fixed, N_TEST, cols, rng, expand="t"))
    assert 0.90 <= covers(lo, hi, p).mean() <= 0.99
    if sigma > 0.005 and p < 0.05:  # seeds dominate: without the t expansion the interval under-covers
        lo, hi = ev.percentile_interval(ev.cell_mean_draws(E, fixed, N_TEST, cols, rng, expand="variance"))
        assert covers(lo, hi, p).mean() < 0.90


# ─── λ_norm*(α) and the slope ────────────────────────────────────────────────────────────────────


def test_sub_grid_argmin_recovers_a_planted_parabola_vertex():
    x = np.log(np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.4]))  # uneven steps in log λ_norm
    vertices = np.array([[x[2] + 0.1, x[3] - 0.3], [x[1] + 0.2, x[4] + 0.05]])  # (2, 2) leading axes
    means = 0.3 * (x - vertices[..., None]) ** 2 + 0.05
    out = ev.lambda_star(means, x)
    assert np.allclose(out.log_star, vertices)
    assert not out.censored.any()
    # a border minimum is censored and never extrapolated beyond the grid
    edge = ev.lambda_star(0.3 * (x - (x[0] - 1.0)) ** 2, x)
    assert edge.censored and edge.log_star == x[0]
    # clipping: a lopsided window moves the estimate at most LAMBDA_CLIP steps from the minimum
    lumpy = np.array([0.5, 0.11, 0.10, 0.0999, 0.9, 0.9])
    got = ev.lambda_star(lumpy, x).log_star
    assert x[3] - ev.LAMBDA_CLIP * (x[3] - x[2]) - 1e-12 <= got <= x[3] + ev.LAMBDA_CLIP * (x[4] - x[3]) + 1e-12
    # the parabola through three points is the exact one (window=3: the classic refinement)
    three = ev.lambda_star(means, x, window=3).log_star
    assert np.allclose(three, vertices)


def test_lambda_star_is_the_per_cell_least_squares_vertex_to_the_bit():
    """λ* takes each window's u^k from the grid's n² offsets and adds the 5-long window by slices (both
    for speed): the values must be those of the plain per-cell formula, bit for bit — what the answers'
    reproducibility rests on. The plain formula is written out here as the reference."""
    from storage.evidence import rows

    def plain_vertex(u, y, w):
        uw, yw = np.where(w, u, 0.0), np.where(w, y, 0.0)
        S = [(w * uw**k).sum(-1) for k in range(5)]
        T = [(uw**k * yw).sum(-1) for k in range(3)]
        det = lambda m: (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                         + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
        d = det([[S[4], S[3], S[2]], [S[3], S[2], S[1]], [S[2], S[1], S[0]]])
        a = det([[T[2], S[3], S[2]], [T[1], S[2], S[1]], [T[0], S[1], S[0]]])
        b = det([[S[4], T[2], S[2]], [S[3], T[1], S[1]], [S[2], T[0], S[0]]])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((S[0] >= 3) & (np.abs(d) > 1e-300) & (a / d > 0), -b / (2 * a), np.nan)

    rng = np.random.default_rng(7)
    for n, window in ((8, 5), (6, 3), (9, 9), (4, 5)):
        x = np.sort(np.log(rng.uniform(1e-4, 1.0, n)))
        m = rng.normal(size=(300, 6, n)) * 10.0 ** rng.integers(-3, 3, size=(300, 6, 1))
        m[rng.random(m.shape) < 0.15] = np.nan
        size = min(window, n)
        j = np.nanargmin(np.where(np.isfinite(m), m, np.inf), -1)
        idx = np.clip(j - size // 2, 0, n - size)[..., None] + np.arange(size)
        y = np.take_along_axis(m, idx, -1)
        u = x[idx] - x[j][..., None]
        table = np.stack([(x[:, None] - x[None, :]) ** k for k in range(5)])
        got = rows._quadratic_vertex(table[:, idx, j[..., None]], y, np.isfinite(y))
        assert np.array_equal(got, plain_vertex(u, y, np.isfinite(y)), equal_nan=True)
        p = rng.normal(size=(5, 40, size)) * 10.0 ** rng.integers(-8, 8, size=(5, 40, size))
        assert np.array_equal(rows._window_sum(p), np.stack([q.sum(-1) for q in p]))


def test_diverged_cells_stay_out_of_the_parabola():
    x = np.arange(8.0)
    row = 0.01 * (x - 3.4) ** 2 + 0.05
    row[5] = 0.9  # every seed diverged: recorded at chance
    exclude = np.zeros(8, bool)
    exclude[5] = True
    assert ev.lambda_star(row, x, exclude=exclude).log_star == pytest.approx(3.4)
    assert abs(ev.lambda_star(row, x).log_star - 3.4) > 0.3  # the chance value drags the fit


def test_lambda_star_ties_missing_and_skipped_rows():
    x = np.arange(5.0)
    rows = np.array([
        [0.3, 0.1, 0.2, 0.1, 0.3],  # tied minima at 1 and 3 (symmetric): the parabola's vertex, 2
        [0.3, 0.2, 0.1, 0.1, 0.3],  # adjacent tie → between them
        [np.nan, np.nan, 0.1, np.nan, np.nan],  # one finite cell → NaN
        [np.nan, 0.1, 0.2, 0.3, np.nan],  # minimum on the first *finite* column → censored
        [0.3, 0.2, 0.1, 0.2, 0.3],  # skipped (every value fixed)
    ])
    out = ev.lambda_star(rows, x, skip=np.array([False, False, False, False, True]))
    assert out.log_star[0] == pytest.approx(2.0)
    assert 2.0 < out.log_star[1] < 3.0
    assert out.index[0] == 1  # ties: the tied cell nearest the tied centre, the first of equals
    assert np.isnan(out.log_star[2]) and np.isnan(out.log_star[4])
    assert out.censored.tolist() == [False, False, False, True, False]


def test_slope_matches_least_squares():
    rng = np.random.default_rng(5)
    x = np.log(ALPHAS)
    y = rng.normal(size=(3, 8))
    assert np.allclose(ev.slope(x, y), [np.polyfit(x, row, 1)[0] for row in y])
    mask = np.array([1, 1, 0, 1, 1, 0, 1, 1], bool)
    assert ev.slope(x, y[0], mask) == pytest.approx(np.polyfit(x[mask], y[0][mask], 1)[0])
    assert np.isnan(ev.slope(x, y[0], np.arange(8) < 2))  # < MIN_POINTS
    assert ev.slope(x, y[0], np.arange(8) < 2, min_points=2) == pytest.approx((y[0, 1] - y[0, 0]) / (x[1] - x[0]))


# ─── Best cells: P(best) and the plausible optima ────────────────────────────────────────────────


def test_plausible_optima_keep_a_plateau_of_equal_best_cells_and_drop_worse_ones():
    rng = np.random.default_rng(50)
    p = np.full(64, 0.10)
    plateau = np.arange(20, 28)
    p[plateau] = 0.05
    plausible, p_best = [], []
    for _ in range(40):
        ce = ev.cell_evidence(panel(measure(p, 1, rng)), ev.seed_draws([0], 500, rng), rng)
        assert ce.p_best.sum() == pytest.approx(1.0)
        assert ce.plausible[ce.best]
        plausible.append(ce.plausible)
        p_best.append(ce.p_best)
    rate = np.mean(plausible, 0)
    assert rate[plateau].mean() >= 0.75  # each plateau cell; the observed best always
    assert rate[np.setdiff1d(np.arange(64), plateau)].max() == 0
    assert np.mean(p_best, 0)[plateau].sum() > 0.99


def test_one_clearly_best_cell_stands_alone():
    rng = np.random.default_rng(51)
    p = np.full(64, 0.10)
    p[20:28] = 0.06
    p[33] = 0.03
    ce = ev.cell_evidence(panel(measure(p, 1, rng)), ev.seed_draws([0], 1000, rng), rng)
    assert ce.best == 33 and ce.p_best[33] > 0.95
    assert ce.plausible.tolist() == [c == 33 for c in range(64)]
    assert ce.sources == ("test set",)
    assert np.all(ce.lo <= ce.means) and np.all(ce.means <= ce.hi)
    json.dumps(ce.to_dict())


def test_prob_best_splits_ties():
    draws = np.array([[0.1, 0.1, 0.2], [0.1, 0.2, 0.2], [np.nan, 0.3, 0.2]])
    assert ev.prob_best(draws).tolist() == pytest.approx([0.5, 1 / 6, 1 / 3])


# ─── Winner's curse ──────────────────────────────────────────────────────────────────────────────


def test_cross_fit_and_validation_are_unbiased_where_the_naive_minimum_is_not():
    rng = np.random.default_rng(60)
    p, reps = 0.05, 400
    E = measure(np.full(64, p), 3, rng, sigma=0.005, shape=(reps,))  # (reps, 64 equal cells, 3 seeds)
    cf = ev.cross_fit(E)
    naive = ev.naive(E).error
    # validation errors: the same trained runs on other examples (no seed noise, so the runs' true
    # error is p itself; with seed noise validation selects good runs, whose test error is truly lower)
    runs = np.full((reps, 64, 3), p)
    V, T = (rng.binomial(N_TEST, runs) / N_TEST for _ in range(2))
    val = ev.validation(V, T).error
    se = lambda x: x.std(ddof=1) / math.sqrt(reps)
    assert abs(cf.error.mean() - p) < 3 * se(cf.error)
    assert abs(val.mean() - p) < 3 * se(val)
    assert (p - naive.mean()) / se(naive) > 10
    assert (p - ev.naive(T).error.mean()) / se(ev.naive(T).error) > 10
    assert cf.per_seed.shape == (reps, 3) and cf.cells.shape == (reps, 3)


@pytest.mark.parametrize("k", [2, 3])
def test_the_cross_fitted_best_error_interval_covers_and_contains_its_estimate(k):
    """Selection-aware interval of the reported best error (64 equal cells: the chosen cell's fresh-seed
    error is p). Measured: 0.99–1.00 (conservative: the reselection in every draw adds spread); the
    t-expanded draws covered 0.75 (3 seeds) and 0.00 (2 seeds) — the reason best errors use "variance"."""
    rng = np.random.default_rng(62 + k)
    covered, inside = [], []
    for _ in range(120):
        P = panel(measure(np.full(64, 0.05), k, rng))
        be = ev.best_error(P, ev.seed_draws(range(k), 300, rng), rng)
        covered.append(be.ci[0] <= 0.05 <= be.ci[1])
        inside.append(be.ci[0] <= be.error <= be.ci[1])
    assert np.mean(covered) >= 0.9 and np.mean(inside) >= 0.9


def test_cross_fit_holds_out_repeated_labels_together():
    E = np.array([[0.1, 0.5, 0.1], [0.2, 0.2, 0.2]])
    out = ev.cross_fit(E)
    assert out.cells.tolist() == [1, 0, 1]  # held-out seed 0: chosen on seeds 1, 2 (means 0.3 vs 0.2)
    assert out.per_seed.tolist() == pytest.approx([0.2, 0.5, 0.2])
    assert out.error == pytest.approx(0.3)
    rep = ev.cross_fit(E, labels=np.array([4, 4, 9]))  # slots 0 and 1 are one seed, drawn twice
    assert rep.cells.tolist() == [0, 0, 1]  # slot 0 is chosen on slot 2 alone, not on its twin
    assert rep.per_seed.tolist() == pytest.approx([0.1, 0.5, 0.2])
    assert np.isnan(ev.cross_fit(E, labels=np.array([4, 4, 4])).error)


def test_best_error_interval_repeats_the_selection():
    rng = np.random.default_rng(61)
    P = panel(measure(np.full(64, 0.05), 3, rng))
    sd = ev.seed_draws(range(3), 600, rng)
    cf = ev.best_error(P, sd, rng)
    nv = ev.best_error(P, sd, rng, method="naive")
    assert cf.method == "cross_fit" and ev.default_method(panel(P.E[:, :1])) == "naive"
    assert nv.error < cf.error and nv.ci[1] < cf.ci[1]  # the naive minimum and its interval sit low
    assert cf.ci[0] <= 0.05 <= cf.ci[1]
    assert 0 < cf.n_valid_draws < 600  # draws that resampled a single label cannot cross-fit
    V = panel(measure(np.full(64, 0.05), 3, rng))
    va = ev.best_error(P, sd, rng, validation_panel=V)
    assert va.method == "validation" and va.ci[0] <= 0.05 <= va.ci[1]
    with pytest.raises(ValueError, match="validation_panel"):
        ev.best_error(P, sd, rng, method="validation")
    json.dumps(va.to_dict())


# ─── Comparisons ─────────────────────────────────────────────────────────────────────────────────


def test_comparison_is_paired_over_seeds():
    rng = np.random.default_rng(70)
    k, n_test = 5, 20_000
    shared = 0.01 * rng.standard_normal(k)  # a seed's initialisation and data order, common to both panels
    runs = lambda p: np.clip(p[:, None] + shared + 0.001 * rng.standard_normal((64, k)), 0, 1)
    coupled = panel(rng.binomial(n_test, runs(np.full(64, 0.060))) / n_test, n_test=n_test)
    decoupled = panel(rng.binomial(n_test, runs(np.full(64, 0.051))) / n_test, n_test=n_test)
    sd = ev.seed_draws(range(k), 1000, rng)
    paired = ev.compare(ev.best_error(coupled, sd, rng), ev.best_error(decoupled, sd, rng))
    other = ev.seed_draws(range(k), 1000, rng)
    unpaired = ev.compare(ev.best_error(coupled, sd, rng), ev.best_error(decoupled, other, rng))
    assert paired.paired and not unpaired.paired and unpaired.notes
    width = lambda c: c.ci[1] - c.ci[0]
    assert width(paired) < 0.7 * width(unpaired)
    assert paired.ci[0] <= paired.improvement <= paired.ci[1]
    assert paired.improvement == pytest.approx((paired.coupled_error - paired.decoupled_error) / paired.coupled_error)
    assert ev.relative_improvement(0.1, 0.085) == pytest.approx(0.15)
    json.dumps(paired.to_dict())


# ─── Budgets ─────────────────────────────────────────────────────────────────────────────────────


def _budget_panels(rng, star_of_t, k=3):
    out = []
    for T in (4, 8, 16, 32):
        p = (0.04 + 0.002 * (I - 3.5) ** 2 + CURVATURE * (J - star_of_t(T)) ** 2).ravel()
        out.append(panel(measure(p, k, rng), budget=T))
    return out


@pytest.mark.parametrize("planted, k_true, favoured", [
    ("flat", 0.0, "sqrt_rule"),  # λ_norm* flat: the paper's √ rule
    ("raw 1/T", -0.5, "tau_fraction"),  # raw λ* ∝ 1/T: λ_norm* ∝ T^−½
])
def test_budget_exponent_favours_the_planted_prediction(planted, k_true, favoured):
    rng = np.random.default_rng(80)
    star = (lambda T: 3.3) if planted == "flat" else (lambda T: 4.8 - 0.5 * math.log2(T / 4))
    hits = []
    for _ in range(10):
        sd = ev.seed_draws(range(3), 400, rng)
        scale = np.sqrt(128 / (50_000 * np.array([4, 8, 16, 32])))  # λ/λ_norm as the runs record it
        bs = ev.budget_scaling(_budget_panels(rng, star), sd, rng, raw_scale=scale)
        hits.append(bs.k_ci[0] <= k_true <= bs.k_ci[1] and bs.favoured == favoured)
        assert bs.raw_exponent_ci == pytest.approx((bs.k_ci[0] - 0.5, bs.k_ci[1] - 0.5))
        assert np.allclose(bs.raw_star, bs.lambda_norm_star * scale)
    assert np.mean(hits) >= 0.8
    json.dumps(bs.to_dict())


def test_budget_predictions_and_verdict_lines():
    assert ev.consistent_predictions((-0.1, 0.2)) == ("sqrt_rule",)
    assert ev.consistent_predictions((-0.6, 0.1)) == ("sqrt_rule", "tau_fraction")
    assert ev.consistent_predictions((0.1, 0.3)) == ()
    assert ev.favoured_prediction(("sqrt_rule", "tau_fraction")) is None
    assert ev.favoured_prediction(("tau_epochs",)) == "tau_epochs"


def test_panel_validates_its_shape():
    with pytest.raises(ValueError, match="shape"):
        ev.Panel(np.zeros((10, 2)), False, N_TEST, ALPHAS, WDS, (0, 1))
    with pytest.raises(ValueError, match="repeat"):
        ev.Panel(np.zeros((64, 2)), False, N_TEST, ALPHAS, WDS, (1, 1))


def test_cross_fit_with_one_seed_says_why_it_has_no_error():
    rng = np.random.default_rng(90)
    P = panel(measure(np.full(64, 0.05), 1, rng))
    be = ev.best_error(P, ev.seed_draws([0], 100, rng), rng, method="cross_fit")
    assert be.error is None and be.ci is None and any("≥ 2 seeds" in n for n in be.notes)


def test_a_loss_metric_gets_normal_test_noise_from_its_standard_errors():
    """A loss is no proportion: with ``se`` the test stage is Normal(0, se²); nominal 95% covers ~95%."""
    rng = np.random.default_rng(90)
    truth, se = 1.5, 0.03
    covered = []
    for _ in range(300):
        E = truth + rng.normal(0, se, (4, 1))
        P = ev.Panel(E, np.zeros_like(E, bool), None, [1.0, 2.0], [1.0, 2.0], (0,), se=np.full_like(E, se))
        ce = ev.cell_evidence(P, ev.seed_draws([0], 400, rng), rng)
        covered.append(ce.lo[0] <= truth <= ce.hi[0])
        assert ce.sources == ("test set",) and ce.hi[0] > 1  # not clipped to [0, 1]
    assert 0.9 <= np.mean(covered) <= 0.99


# ─── The counts form of the noise model (storage.evidence.noise) ─────────────────────────────────


def test_counts_draws_equal_the_per_slot_means_without_test_noise():
    """No test noise: the seed stage on counts is exactly the mean of the resampled slots, at both gains."""
    rng = np.random.default_rng(100)
    E = rng.uniform(0.05, 0.2, (64, 1)) + rng.normal(0, 0.005, (64, 4))  # no value leaves [0, 1] after the seed stage
    E[5, 1] = np.nan  # a cell missing a seed
    fixed = np.zeros(E.shape, bool)
    fixed[7, :2] = True  # two values without test noise (held at a level near the others: no clipping)
    E[7, :2] = 0.25
    sd = ev.seed_draws(range(4), 500, rng)
    cols = sd.columns(range(4))
    for expand in ("t", "variance"):
        slots = value_draws(E, fixed, None, cols, rng, expand=expand)
        counts = ev.cell_mean_draws(E, fixed, None, cols, rng, expand=expand)
        own = (sd.chosen == 1).all(1)  # draws where cell 5 has no chosen label: it resamples its own seeds
        assert np.allclose(np.delete(counts, 5, 1), np.delete(np.nanmean(slots, -1), 5, 1))
        assert own.any() and np.allclose(counts[~own, 5], np.nanmean(slots, -1)[~own, 5])


@pytest.mark.parametrize("n_test", [1000, 20_000])
def test_counts_draws_match_the_per_slot_draws_in_distribution(n_test):
    """With test noise: the pooled binomial (or its Normal form) has the per-slot draws' mean and spread."""
    rng = np.random.default_rng(101)
    E = rng.uniform(0.06, 0.2, (16, 1)) + rng.normal(0, 0.01, (16, 3))  # seeds 1 point apart
    fixed = np.zeros(E.shape, bool)
    sd = ev.seed_draws(range(3), 20_000, rng)
    cols = sd.columns(range(3))
    slots = np.nanmean(value_draws(E, fixed, n_test, cols, rng, expand="t"), -1)
    counts = ev.cell_mean_draws(E, fixed, n_test, cols, rng, expand="t")
    se = slots.std(0) / np.sqrt(len(slots))
    assert np.all(np.abs(counts.mean(0) - slots.mean(0)) < 5 * se * np.sqrt(2))
    assert np.allclose(counts.std(0), slots.std(0), rtol=0.05)
    lo_s, hi_s = ev.percentile_interval(slots)
    lo_c, hi_c = ev.percentile_interval(counts)
    assert np.allclose(lo_c, lo_s, atol=0.15 * (hi_s - lo_s)) and np.allclose(hi_c, hi_s, atol=0.15 * (hi_s - lo_s))


def test_every_answer_on_a_panel_reads_one_set_of_draws():
    rng = np.random.default_rng(102)
    P = panel(measure(np.full(64, 0.05), 3, rng))
    sd = ev.seed_draws(range(3), 200, rng)
    first = noise.draws_for(P, sd, rng)
    ce = ev.cell_evidence(P, sd, rng)
    be = ev.best_error(P, sd, rng)
    assert noise.draws_for(P, sd, rng) is first  # cell evidence and the best error did not draw again
    assert np.allclose(ev.percentile_interval(first.means("t"))[0], ce.lo)
    assert be.n_boot == 200 and ev.cell_evidence(P, sd, rng).lo.tolist() == ce.lo.tolist()


def test_cross_fitting_uses_at_most_max_folds_folds_of_seed_labels():
    folds = noise.panel_folds(np.zeros((4, 12)))
    assert folds.max() + 1 == noise.MAX_FOLDS and np.bincount(folds).tolist() == [3, 3, 2, 2, 2]
    assert noise.panel_folds(np.zeros((4, 3))).tolist() == [0, 1, 2]  # up to MAX_FOLDS seeds: leave-one-seed-out
    # a panel holding 2 of a sweep's 7 seed labels: folds over its own seeds, leave-one-seed-out
    E = np.full((4, 7), np.nan)
    E[:, [0, 5]] = 0.05
    assert noise.panel_folds(E)[[0, 5]].tolist() == [0, 1]
    # fold sums: held-out fold 0 chooses on folds 1, 2 and reports fold 0's mean at that cell
    S = np.array([[[0.1, 0.5, 0.1]], [[0.2, 0.2, 0.2]]])[:, 0, :]
    N = np.ones_like(S)
    err, per_fold, cells = noise.fold_selection(S, N)
    assert cells.tolist() == [1, 0, 1] and per_fold.tolist() == pytest.approx([0.2, 0.5, 0.2])
    assert err == pytest.approx(0.3)
    rng = np.random.default_rng(103)
    P = panel(measure(np.full(64, 0.05), 8, rng))
    be = ev.best_error(P, ev.seed_draws(range(8), 200, rng), rng)
    assert be.method == "cross_fit" and len(be.per_seed) == 8 and be.ci[0] <= be.error <= be.ci[1]


# ─── One tie rule, one argmin, one way to read an interval ───────────────────────────────────────


def test_one_argmin_breaks_ties_by_seeds_then_position_and_agrees_with_rank_cells():
    from storage import analysis
    import pandas as pd

    means = np.array([0.2, 0.1 + 1e-14, 0.1, np.nan, 0.1])
    n = np.array([3, 2, 2, 3, 3])
    assert ev.best_cell(means, n) == 4  # the three tie at 12 decimals; the one with 3 seeds wins
    assert ev.best_cell(means) == 1  # without seed counts: the first of the tied cells
    assert ev.best_cell(np.full(3, np.nan)) == -1
    cells, ok = ev.argmin(np.array([[np.nan, np.nan], [0.3, 0.3]]), -1)
    assert ok.tolist() == [False, True] and cells[1] == 0
    frame = pd.DataFrame({"sweep": "s", "optimizer": "o", "schedule": "c", "study": "x", "budget": 1,
                          "test_error": means, "n_seeds": n, "_lr": np.arange(5.0), "_wd": 0.0})
    ranked = analysis.rank_cells(frame)
    assert int(ranked.index[ranked["best"]][0]) == ev.best_cell(means, n)


def test_argmin_fast_path_gives_the_rounding_rules_indices():
    """argmin rounds only the slices a rounding can tie; the indices equal the rule's on every score."""
    from storage.evidence.base import tie_key

    def by_rule(s, axis, n_seeds=None):  # the rule as stated: round every score, ties → more seeds → first
        finite = np.isfinite(s)
        key = np.where(finite, tie_key(s), np.inf)
        tied = finite & (key == key.min(axis, keepdims=True))
        if n_seeds is not None:
            n = np.where(tied, np.broadcast_to(n_seeds, s.shape), -np.inf)
            tied &= n == n.max(axis, keepdims=True)
        return tied.argmax(axis), finite.any(axis)

    rng = np.random.default_rng(7)
    s = rng.uniform(0.1, 0.3, size=(400, 9, 4))
    low = s.min(1, keepdims=True)
    for gap, share in ((0.0, 0.1), (1e-14, 0.1), (4e-13, 0.1), (1.5e-12, 0.1), (3e-12, 0.1), (1e-11, 0.05)):
        pick = rng.random(s.shape) < share
        s = np.where(pick, low + gap, s)
    s[rng.random(s.shape) < 0.05] = np.nan
    s[rng.random(s.shape) < 0.02] = np.inf
    s[:3] = np.nan  # slices with no finite score
    n = rng.integers(1, 4, size=(1, 9, 1)).astype(float)
    for axis, seeds in ((1, None), (1, n), (-1, None), (0, None)):
        got, want = ev.argmin(s, axis, seeds), by_rule(s, axis, seeds)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_an_interval_is_read_by_two_rules():
    from storage.evidence import verdicts

    assert verdicts.side((0.1, 0.3)) == "above" and verdicts.side((-0.3, -0.1)) == "below"
    assert verdicts.side((-0.1, 0.3)) == "straddles" and verdicts.side(None) == "straddles"
    assert verdicts.side((1.2, 2.0), 1.0) == "above" and verdicts.side((float("nan"), 2.0)) == "straddles"
    preds = {"coupled": -1.0, "decoupled": 0.0}
    assert verdicts.near((-1.2, -0.8), preds, 0.25) == ("coupled",)
    assert verdicts.near((-0.8, -0.2), preds, 0.25) == ("coupled", "decoupled")
    assert verdicts.near((-0.8, -0.2), preds) == ()  # margin 0: contained only
    assert ev.consistent_predictions((-0.6, 0.1)) == ("sqrt_rule", "tau_fraction")


def test_a_panel_holding_few_of_a_sweeps_seeds_is_still_cross_fitted():
    """Folds are the panel's own: 2 seeds of a sweep's 7 labels are leave-one-seed-out, not one fold."""
    rng = np.random.default_rng(104)
    E = np.full((64, 7), np.nan)
    E[:, [0, 5]] = measure(np.full(64, 0.05), 2, rng)
    P = panel(E, seeds=tuple(range(7)))
    be = ev.best_error(P, ev.seed_draws(range(7), 300, rng), rng)
    assert be.method == "cross_fit" and be.error is not None and be.ci[0] <= be.error <= be.ci[1]
    assert be.n_valid_draws > 100


def test_a_partly_diverged_cell_is_drawn_as_the_per_slot_model_draws_it():
    """Each seed's value is clipped to [0, 1] after the seed stage, as the per-slot form clips it: a cell
    with two diverged seeds (fixed at chance) and one good one is not a plausible optimum."""
    rng = np.random.default_rng(105)
    E = np.array([[0.05, 0.051, 0.049], [0.9, 0.9, 0.045]])
    fixed = np.array([[False] * 3, [True, True, False]])
    sd = ev.seed_draws(range(3), 20_000, rng)
    cols = sd.columns(range(3))
    counts = ev.cell_mean_draws(E, fixed, 20_000, cols, rng, expand="t")
    slots = np.nanmean(value_draws(E, fixed, 20_000, cols, rng, expand="t"), -1)
    low = lambda d: (d[:, 1] <= 0.055).mean()  # noqa: E731
    assert abs(low(counts) - low(slots)) < 0.02 and low(counts) < 0.1


def test_remembered_normals_are_the_generators_own_draw():
    """noise.remembered_normals: the numbers a generator would draw and the generator left where the draw
    would leave it, whether the numbers were drawn now or taken from an earlier generator in the same state
    (each panel's generator starts from storage.panel.RNG_SEED) — and a generator in another state, or
    asking for another shape, gets its own numbers."""
    noise._NORMALS.clear()
    shape = (50, 7, 3)
    plain = np.random.default_rng(0)
    expected, after = plain.standard_normal(shape), plain.random(4)
    for _ in range(2):  # drawn, then remembered
        gen = np.random.default_rng(0)
        got = noise.remembered_normals(gen, shape)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(gen.random(4), after)
    assert len(noise._NORMALS) == 1 and not got.flags.writeable
    moved = np.random.default_rng(0)
    moved.random()  # another state: not the remembered numbers
    other = np.random.default_rng(0)
    other.random()
    np.testing.assert_array_equal(noise.remembered_normals(moved, shape), other.standard_normal(shape))
    np.testing.assert_array_equal(noise.remembered_normals(np.random.default_rng(0), (4, 2)),
                                  np.random.default_rng(0).standard_normal((4, 2)))
    for seed in range(1, 12):  # the oldest entries go: at most _NORMALS_KEPT kept
        noise.remembered_normals(np.random.default_rng(seed), (2,))
    assert len(noise._NORMALS) == noise._NORMALS_KEPT


def test_the_written_out_t_factors_are_scipys():
    """noise._T_OVER_Z_95 (t_df/z at 95 %, written out so that the default level needs no SciPy import) is
    SciPy's stdtrit(df, 0.975)/ndtri(0.975), bit for bit, for every df it holds — and _t_over_z returns it."""
    from scipy.special import ndtri, stdtrit

    q = 0.5 + ev.DEFAULT_LEVEL / 2
    assert len(noise._T_OVER_Z_95) == 100
    for df, written in enumerate(noise._T_OVER_Z_95, start=1):
        assert written == float(stdtrit(df, q) / ndtri(q)), df
        assert noise._t_over_z(df, ev.DEFAULT_LEVEL) == written
    assert noise._t_over_z(101, ev.DEFAULT_LEVEL) == float(stdtrit(101, q) / ndtri(q))  # past the table: SciPy
    assert noise._t_over_z(3, 0.9) == float(stdtrit(3, 0.95) / ndtri(0.95))  # another level: SciPy
