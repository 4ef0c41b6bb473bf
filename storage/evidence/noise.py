"""One bootstrap of one panel, shared by every answer of a request: :class:`PanelDraws`.

This is the noise model of :mod:`storage.evidence` (seed stage, then test stage; see its module
doc) computed on *counts* instead of on every resampled slot. A seed draw b chooses each seed
label s some M_bs times (Σ_s M_bs = K). Every answer of Basin needs, per draw and cell c, only
sums over the chosen slots — the cell mean, and for cross-fitting the sums over *folds* of seeds
(:func:`panel_folds`: with ≤ MAX_FOLDS seeds a fold is one seed, leave-one-seed-out). So per fold f
it keeps

* N_bcf   slots with a value, N^m_bcf of them measured (not fixed);
* Sm_bcf(g), Sf_bcf(g)  the sums of the measured / fixed slots' values after the seed stage at
          gain g, x = clip(ē_c + g·(e_cs − ē_c), 0, 1), for g the ``variance`` and the ``t`` gain;
* Y_bcf   the measured slots' sum after the test stage, drawn at the ``variance`` gain g_v.

The sum of a fold's values at gain g is S(g) = Y + Sm(g) − Sm(g_v) + Sf(g): the ``t`` cell
intervals, the ``variance`` slopes and selections, and the cross-fitted best error all read the same
draws. Sums over labels are matrix products (n_boot × K)·(K × n_cells): no (n_boot, n_cells, K)
array, no per-slot random number.

Test stage. The measured slots of a fold are N^m values whose redraws Binomial(n_test, x_s)/n_test
are summed; the sum is drawn as one Binomial(n_test·N^m, p̃)/n_test with p̃ the slots' mean after
the seed stage, clipped to the Jeffreys floor [½/(n_test+1), 1 − ½/(n_test+1)]. Exact where the
slots' values are equal — one seed, or a label drawn several times — and otherwise its variance
exceeds the exact sum's by Σ_s (x_s − p̃)²/n_test, a 1/n_test share of the seed stage's own spread
(≤ 0.1% at n_test = 1000). Where the count variance n_test·N^m·p̃(1 − p̃) is at least
NORMAL_MIN_VAR (skewness ≤ 0.1: its 2.5% and 97.5% quantiles move by < 0.05 sd, below the
1000 draws' own Monte Carlo error) the binomial is drawn as its Normal approximation, which costs a
tenth; below it (small test sets, errors near 0 or 1) the binomial itself. A loss metric's sum gets
Normal(0, Σ se_s²) (exact). Cells that have none of a draw's labels resample their own seeds, as in
the per-slot form (tests/storage/reference_noise.py). Each (cell, seed) value of an error is clipped
to [0, 1] after the seed stage, as the per-slot form clips every slot, so the counts carry one sum per
gain (``Sm``, ``Sf``) rather than one deviation: under the ``t`` gain a partly diverged cell is pushed
far outside [0, 1], and clipping only the mean would make it look good.

Mixed panels (an adaptive sweep, :mod:`storage.evidence.doubt`: more seeds only where the doubt is).
A one-seed cell has no seed spread of its own: resampling its one value gives it none, and its
interval would hold the test noise only. In a panel whose other cells have ≥ 2 seeds, a measured
one-seed cell *borrows* the seed variance of the :data:`BORROW_FROM` cells with seeds nearest to it in
mean error (:func:`borrowed_seed_sd`: Σ(k−1)·(s² − v̂)/Σ(k−1) over them, on Σ(k−1) degrees of
freedom — near, because the spread is not the same everywhere: cells on a cliff's edge vary between
seeds far more than the plateau's): its seed stage adds Normal(0, σ̂_c²) to its value (times
t_df/z under the ``t`` gain), drawn once per draw and cell, and the test stage then redraws it as any
value. A panel where every cell has one seed borrows nothing (no spread to borrow:
its intervals say "test set" only, as before); a panel where every cell has its seeds is unchanged.

Folds (:func:`panel_folds`) are the panel's own: among the seed columns that hold a value, a column's
rank mod min(k, MAX_FOLDS) — a panel with 2 of a sweep's 7 seeds is still cross-fitted leave-one-out.

Layout: every (n_boot, n_cells, F) array is a view of a fold-major (F, n_boot, n_cells) array
(:func:`_fold_sums`), so a sum over folds — each cell mean, cross-fitting's training sums — adds F
contiguous slabs (≈ 10× faster than reducing a last axis of length F); the values are the same.

Cost: 64 cells × 1000 draws × 49 seeds ≈ 11 ms a panel for the draws every answer of it reads (a third
of it the 320,000 Normal test-stage numbers, which every panel of one shape shares: each panel's
generator starts from the same seed, so :func:`remembered_normals` draws them once), against ≈ 0.6 s
for the two per-slot sets it replaces (bench/answers_speed.py; docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from storage.evidence.base import (DEFAULT_LEVEL, EXPANSIONS, Panel, Rng, SeedDraws, _nanmean, _rng, argmin)

#: At most this many folds of seed labels for cross-fitting (leave-one-seed-out up to this many seeds).
MAX_FOLDS = 5
#: Count variance from which a fold's test-stage binomial is drawn as its Normal approximation.
NORMAL_MIN_VAR = 100.0


def t_quantile(level: float, df: int) -> float:
    """t with P(|T_df| ≤ t) = level (two-sided): SciPy's Student t quantile (``scipy.special.stdtrit``)."""
    from scipy.special import stdtrit  # see expansion

    return float(stdtrit(df, 0.5 + level / 2))


def expansion(k: np.ndarray, level: float = DEFAULT_LEVEL, expand: str = "t") -> np.ndarray:
    """Factor f on the seeds' spread of a cell with k seeds: 1 ("variance"), t_{k−1}/z ("t"); 1 where k < 2."""
    if expand not in EXPANSIONS:
        raise ValueError(f"expand must be one of {EXPANSIONS}, not {expand!r}")
    k = np.asarray(k, dtype=np.int64)
    out = np.ones(k.shape)
    several = k >= 2
    if expand == "t" and several.any():
        dfs, where = np.unique(k[several] - 1, return_inverse=True)
        out[several] = np.array([_t_over_z(int(df), float(level)) for df in dfs])[where]
    return out


#: t_df/z at the two-sided 95 % level (:data:`DEFAULT_LEVEL`) for df = 1, 2, …, 100: SciPy's own values,
#: ``float(stdtrit(df, 0.975) / ndtri(0.975))``, written out so that an answer at the default level does
#: not import SciPy (≈ 0.17 s of every `basin best`, measured here); tests/storage/test_evidence.py
#: checks each against SciPy, bit for bit.
_T_OVER_Z_95 = (
    6.482876642836102, 2.195271323191772, 1.6237269308958933, 1.4165796550845007, 1.3115454446677266,
    1.2484473543625838, 1.206463113733027, 1.1765543415050645, 1.1541830261381394, 1.1368264261800467,
    1.122972247170218, 1.1116596258163038, 1.1022491604455509, 1.0942990304085216, 1.087494240900536,
    1.0816042110685693, 1.0764562994398224, 1.0719186968805772, 1.0678890382261181, 1.0642866214479845,
    1.06104696878688, 1.0581179471982505, 1.0554569506053968, 1.0530288198700553, 1.0508042846698586,
    1.048758780700374, 1.0468715408369043, 1.045124889004502, 1.0435036859172993, 1.0419948899114588,
    1.0405872059302264, 1.039270802691872, 1.0380370830777175, 1.0368784964151403, 1.0357883840027549,
    1.0347608512083881, 1.0337906609567609, 1.0328731445476205, 1.0320041266020645, 1.0311798615935077,
    1.0303969799298647, 1.0296524419513906, 1.028943498521011, 1.0282676571308076, 1.027622652644557,
    1.0270064219531037, 1.026417081945443, 1.025852910300323, 1.0253123286858903, 1.024793888022443,
    1.0242962555186732, 1.023818203237336, 1.0233585979839106, 1.0229163923430677, 1.022490616713774,
    1.0220803722156016, 1.0216848243570795, 1.021303197372262, 1.0209347691446697, 1.020578866648752,
    1.0202348618483374, 1.01990216799952, 1.0195802363121957, 1.019268552930324, 1.018966636195957,
    1.018674034166422, 1.0183903223577349, 1.0181151016905656, 1.0178479966178524, 1.0175886534155993,
    1.0173367386205034, 1.017091937599904, 1.0168539532411627, 1.0166225047489958, 1.016397326540533,
    1.016178167228951, 1.0159647886875194, 1.015756965186727, 1.0155544825979181, 1.0153571376575348,
    1.0151647372866517, 1.014977097961015, 1.0147940451272695, 1.014615412661461, 1.0144410423663013,
    1.0142707835039784, 1.014104492361631, 1.013942031846839, 1.0137832711107528, 1.0136280851966688,
    1.0134763547120802, 1.01332796552239, 1.0131828084646322, 1.0130407790796971, 1.0129017773616784,
    1.012765707523077, 1.012632477774708, 1.0125020001192409, 1.0123741901574048, 1.0122489669059564,
)


@functools.lru_cache(maxsize=4096)
def _t_over_z(df: int, level: float) -> float:
    """t_df/z at the two-sided ``level``; cached — SciPy's ``stdtrit`` inverts the t CDF iteratively
    (≈ 0.1 ms an element: 9 ms for a 64-cell panel), and a panel's cells share a few seed counts. At the
    default level and df ≤ 100 the value is :data:`_T_OVER_Z_95`'s (the same number, without SciPy)."""
    if level == DEFAULT_LEVEL and 1 <= df <= len(_T_OVER_Z_95):
        return _T_OVER_Z_95[df - 1]
    # SciPy's quantiles from scipy.special (0.2 s to import; scipy.stats takes 0.8 s, measured here),
    # imported where first needed: `basin --help` and a one-seed panel never load SciPy for it
    from scipy.special import ndtri, stdtrit

    q = 0.5 + level / 2
    return float(stdtrit(df, q) / ndtri(q))


def cell_spread(E: np.ndarray, fixed: np.ndarray, n_test: int | None,
                se: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell (k, ē, s², v̂): its finite values, their mean, their sample variance (ddof 1; 0 with
    one value) and the test noise v̂ of one value (mean e(1 − e)/(n_test − 1) over its measured values,
    or mean se² for a loss; 0 for fixed values or without n_test) — what the seed stage is set from."""
    E = np.asarray(E, float)
    finite = np.isfinite(E)
    k = finite.sum(1)
    centre = _nanmean(E, 1)
    dev = np.where(finite, E - centre[:, None], 0.0)
    s2 = np.where(k >= 2, (dev**2).sum(1) / np.maximum(k - 1, 1), 0.0)
    binom = np.zeros(len(E))
    if se is not None:  # a loss: the test stage's variance is each value's se²
        binom = np.where(finite & ~fixed, se**2, 0.0).sum(1) / np.maximum(k, 1)
    elif n_test is not None and n_test > 1:
        binom = np.where(finite & ~fixed, E * (1 - E), 0.0).sum(1) / np.maximum(k, 1) / (n_test - 1)
    return k, centre, s2, binom


def seed_gain(E: np.ndarray, fixed: np.ndarray, n_test: int | None, *, level: float = DEFAULT_LEVEL,
              expand: str = "t", se: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ē, g) per cell: the seed stage maps a chosen value e_s to ē + g·(e_s − ē).

    g makes the draws' variance of the cell mean max(f²·s², v̂)/k: with τ² = max(f²·s², v̂),
    g = √(k/(k − 1))·√((τ² − v̂)/s²), and the test stage adds v̂ back.
    """
    k, centre, s2, binom = cell_spread(E, fixed, n_test, se)
    excess = np.maximum(expansion(k, level, expand) ** 2 * s2 - binom, 0.0)
    ratio = np.divide(excess, s2, out=np.zeros_like(s2), where=s2 > 0)
    return centre, np.sqrt(ratio * k / np.maximum(k - 1, 1))


#: A one-seed cell borrows the seed variance pooled over this many cells with seeds, nearest in mean error.
BORROW_FROM = 6


def seed_spreads(E: np.ndarray, fixed: np.ndarray, n_test: int | None,
                 se: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cells, s² − v̂, k − 1) of the panel's cells with ≥ 2 seeds and no fixed value
    (:func:`cell_spread`): what the seeds add to a value's variance, and its degrees of freedom."""
    fixed = np.asarray(fixed, bool)
    k, _, s2, binom = cell_spread(E, fixed, n_test, se)
    multi = np.flatnonzero((k >= 2) & ~(fixed & np.isfinite(np.asarray(E, float))).any(1))
    return multi, (s2 - binom)[multi], k[multi] - 1


def borrowed_seed_sd(E: np.ndarray, fixed: np.ndarray, n_test: int | None, *, level: float = DEFAULT_LEVEL,
                     se: np.ndarray | None = None) -> dict[str, np.ndarray] | None:
    """Per cell, the seed stage's sd for a measured one-seed cell of a panel whose other cells have
    seeds: {"variance": σ̂_c, "t": σ̂_c·t_df/z}, σ̂_c² pooled over the :data:`BORROW_FROM` cells with
    seeds nearest in mean error (a cliff's unstable cells do not lend their spread to the plateau);
    0 for every other cell; None when nothing borrows."""
    E = np.asarray(E, float)
    finite = np.isfinite(E)
    single = np.flatnonzero((finite.sum(1) == 1) & ~(np.asarray(fixed, bool) & finite).any(1))
    if not len(single):
        return None
    cells, excess, df = seed_spreads(E, fixed, n_test, se)
    if not len(cells):
        return None
    means = _nanmean(E[cells], 1)
    mine = _nanmean(E[single], 1)
    m = min(BORROW_FROM, len(cells))
    pick = np.argsort(np.abs(mine[:, None] - means[None, :]), axis=1, kind="stable")[:, :m]  # (singles, m)
    d = df[pick]
    var = np.maximum((d * excess[pick]).sum(1) / d.sum(1), 0.0)
    sd = np.zeros(len(E))
    sd[single] = np.sqrt(var)
    t = np.zeros(len(E))
    t[single] = sd[single] * expansion(d.sum(1) + 1, level, "t")
    if not sd.any():
        return None
    return {"variance": sd, "t": t}


def cell_mean_draws(E: np.ndarray, fixed: np.ndarray, n_test: int | None, columns: np.ndarray, rng: Rng = None, *,
                    level: float = DEFAULT_LEVEL, expand: str = "t", se: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap cell means (n_boot, n_cells): the mean of each cell's chosen seeds after both stages,
    drawn on counts (:mod:`storage.evidence.noise`); ``columns`` as in :func:`value_draws`."""
    if expand not in EXPANSIONS:
        raise ValueError(f"expand must be one of {EXPANSIONS}, not {expand!r}")
    E = np.asarray(E, float)
    K = E.shape[1]
    return draw_arrays(E, fixed, n_test, counts_of(columns, K), np.zeros(K, np.int64), rng, level=level,
                             se=se).means(expand)


def panel_draws(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL,
                expand: str = "t") -> np.ndarray:
    """Bootstrap cell means (n_boot, n_cells) of a panel with the shared seed draw; every answer on the
    same Panel object reads the same draws (:func:`storage.evidence.noise.draws_for`)."""
    if expand not in EXPANSIONS:
        raise ValueError(f"expand must be one of {EXPANSIONS}, not {expand!r}")
    return draws_for(panel, seeds, rng, level=level).means(expand)


def panel_folds(E: np.ndarray) -> np.ndarray:
    """Fold of each seed column of a panel's values E (n_cells, K): among the columns with any value,
    its rank mod min(k, MAX_FOLDS) — leave-one-seed-out up to MAX_FOLDS seeds, whatever other panels
    of the sweep hold; a column without a value: fold 0."""
    has = np.isfinite(np.asarray(E, float)).any(0)
    k = int(has.sum())
    return np.where(has, (np.cumsum(has) - 1) % max(1, min(k, MAX_FOLDS)), 0)


def fold_selection(S: np.ndarray, N: np.ndarray):
    """Cross-fitting on fold sums S, N (..., n_cells, F): for each held-out fold f choose the cell
    with the lowest mean over the other folds (among cells with values in f and elsewhere), report
    its mean over f. Returns (error (...,) = Σ_f chosen sums / Σ_f chosen counts, per_fold (..., F),
    cells (..., F), −1 where a fold has no choice)."""
    tot_S, tot_N = S.sum(-1, keepdims=True), N.sum(-1, keepdims=True)
    train_N = tot_N - N
    with np.errstate(invalid="ignore", divide="ignore"):
        train = np.where((N > 0) & (train_N > 0), (tot_S - S) / train_N, np.nan)
    cell, ok = argmin(train, -2)
    held = np.where(ok, np.take_along_axis(S, cell[..., None, :], -2)[..., 0, :], 0.0)
    count = np.where(ok, np.take_along_axis(N, cell[..., None, :], -2)[..., 0, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_fold = np.where(ok, held / np.where(ok, count, 1.0), np.nan)
        error = np.where(count.sum(-1) > 0, held.sum(-1) / count.sum(-1), np.nan)
    return error, per_fold, np.where(ok, cell, -1)


@dataclass(frozen=True, eq=False)
class PanelDraws:
    """The shared bootstrap of one panel (module doc); arrays (n_boot, n_cells, F).

    ``N``/``Nm`` the chosen slots with a value / a measured value; ``Sm[e]``/``Sf[e]`` the sums of the
    measured / fixed slots' seed-stage values at gain ``e`` (each value clipped to [0, 1] for an
    error, as the per-slot form clips it; ``Sf`` None without fixed values); ``Y`` the measured
    slots' sum after the test stage, drawn at the ``variance`` gain."""

    N: np.ndarray
    Nm: np.ndarray
    Sm: dict
    Sf: dict | None
    Y: np.ndarray
    clip: bool
    seed_key: int

    @property
    def n_boot(self) -> int:
        return self.N.shape[0]

    def sums(self, expand: str = "variance") -> np.ndarray:
        """Σ of each fold's values after both stages at the ``expand`` gain (n_boot, n_cells, F)."""
        memo = self.__dict__.setdefault("_sums_memo", {})
        if expand not in memo:
            memo[expand] = self._total(expand, lambda x: x)
        return memo[expand]

    def _total(self, expand: str, reduce) -> np.ndarray:
        """Y + (Sm[expand] − Sm["variance"]) + Sf[expand], each term through ``reduce`` first."""
        out = reduce(self.Y) + (reduce(self.Sm[expand]) - reduce(self.Sm["variance"]) if expand != "variance" else 0.0)
        return out + reduce(self.Sf[expand]) if self.Sf is not None else out

    def means(self, expand: str = "variance") -> np.ndarray:
        """Bootstrap cell means (n_boot, n_cells); NaN for a cell without data (from the fold totals)."""
        memo = self.__dict__.setdefault("_means_memo", {})
        if expand not in memo:
            fold_total = lambda x: x.sum(-1)  # noqa: E731
            n = fold_total(self.N)
            with np.errstate(invalid="ignore", divide="ignore"):
                m = np.where(n > 0, self._total(expand, fold_total) / n, np.nan)
            memo[expand] = np.clip(m, 0.0, 1.0) if self.clip else m
        return memo[expand]


def _fold_sums(counts: np.ndarray, folds: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Σ_s counts_bs·A_xs over each fold's labels: counts (B, K), folds (K,), A (X, K) → (B, X, F).

    One matrix product (B, K_f)·(K_f, X) a fold, written fold-major: the result is a (B, X, F) view
    of an (F, B, X) array, so that every sum over folds (cell means, cross-fitting's training sums)
    adds F contiguous slabs — ≈ 10× faster than reducing a last axis of length F."""
    F = int(folds.max()) + 1 if folds.size else 1
    out = np.empty((F, counts.shape[0], A.shape[0]))
    for f in range(F):
        mine = folds == f
        np.matmul(counts[:, mine], A[:, mine].T, out=out[f])
    return np.moveaxis(out, 0, -1)


def _own_counts(finite: np.ndarray, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each listed cell, counts (n, K) of k_c draws with replacement among its own finite columns."""
    f = finite[cells]
    K = f.shape[1]
    order = np.argsort(~f, axis=1, kind="stable")  # finite columns first
    k = f.sum(1)
    pick = np.minimum((rng.random((len(cells), K)) * k[:, None]).astype(np.int64), np.maximum(k - 1, 0)[:, None])
    cols = np.take_along_axis(order, pick, axis=1)
    counts = np.zeros((len(cells), K))
    np.add.at(counts, (np.repeat(np.arange(len(cells)), K), cols.ravel()), (np.arange(K)[None, :] < k[:, None]).ravel())
    return counts


def draw_arrays(E: np.ndarray, fixed: np.ndarray, n_test: int | None, counts: np.ndarray, folds: np.ndarray,
                rng: Rng = None, *, level: float = DEFAULT_LEVEL, se: np.ndarray | None = None,
                seed_key: int = 0) -> PanelDraws:
    """The shared bootstrap of values E (n_cells, K) whose column j was chosen ``counts[b, j]`` times
    in draw b and belongs to fold ``folds[j]`` (module doc)."""
    gen = _rng(rng)
    E = np.asarray(E, float)
    finite = np.isfinite(E)
    fixed = np.asarray(fixed, bool) & finite
    measured = finite & ~fixed
    centre, gv_cells = seed_gain(E, fixed, n_test, level=level, expand="variance", se=se)
    gains = {"variance": gv_cells, "t": seed_gain(E, fixed, n_test, level=level, expand="t", se=se)[1]}
    centre = np.nan_to_num(centre)
    # each (cell, seed) value after the seed stage at each gain: an error clipped to [0, 1], as the
    # per-slot form clips every slot (a partly diverged cell under the t gain is pushed far outside)
    X = {}
    for e, g in gains.items():
        x = centre[:, None] + g[:, None] * (E - centre[:, None])
        X[e] = np.where(finite, np.clip(x, 0.0, 1.0) if se is None else x, 0.0)
    some_fixed = bool(fixed.any())
    parts = [finite, X["variance"] * measured, X["t"] * measured]
    if some_fixed:  # measured = finite unless some value is fixed: then their own counts and sums
        parts += [measured, X["variance"] * fixed, X["t"] * fixed]
    if se is not None:
        parts.append(np.where(measured, np.asarray(se, float) ** 2, 0.0))
    parts = [np.asarray(p, float) for p in parts]
    folds = np.asarray(folds, np.int64)
    R = _fold_sums(np.asarray(counts, float), folds, np.concatenate(parts))
    C = len(E)
    fallback = (R[:, :C].sum(-1) == 0) & finite.any(1)[None, :]
    if fallback.any():  # a cell without any chosen label resamples its own seeds
        b, c = np.nonzero(fallback)
        own = _own_counts(finite, c, gen)
        onehot = (folds[:, None] == np.arange(R.shape[-1])[None, :]).astype(float)
        for i, part in enumerate(parts):
            R[b, i * C + c, :] = (own * part[c]) @ onehot
    part = lambda i: R[:, i * C:(i + 1) * C]  # noqa: E731
    N, Sm = part(0), {"variance": part(1), "t": part(2)}
    Nm, Sf = (part(3), {"variance": part(4), "t": part(5)}) if some_fixed else (N, None)
    borrowed = borrowed_seed_sd(E, fixed, n_test, level=level, se=se)
    if borrowed is not None:  # a one-seed cell of a mixed panel: the pooled seed spread, drawn (module doc)
        z = gen.standard_normal(N.shape[:2])[:, :, None]
        Sm = {e: Sm[e] + Nm * borrowed[e][None, :, None] * z for e in Sm}
        if se is None:  # an error stays in [0, 1]: the fold's sum in [0, N^m]
            Sm = {e: np.clip(x, 0.0, Nm) for e, x in Sm.items()}
    seed_stage = Sm["variance"]  # the measured slots' sum after the seed stage
    Y = seed_stage
    have = Nm > 0
    if se is not None:
        V = R[:, -C:]
        Y = seed_stage + np.sqrt(V) * gen.standard_normal(V.shape)
    elif n_test is not None:
        floor = 0.5 / (n_test + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.clip(seed_stage / np.where(have, Nm, 1.0), floor, 1 - floor)
        var = n_test * Nm * p * (1 - p)  # 0 where no measured slot was chosen (Nm = 0)
        z = np.empty_like(var)  # fold-major like R; the draws fill (B, C, F) in C order, as they always have
        z[...] = remembered_normals(gen, var.shape)
        Y = Nm * p + np.sqrt(var) / n_test * z
        small = have & (var < NORMAL_MIN_VAR)
        if small.any():  # few test examples or an error near 0 or 1: the binomial itself
            Y[small] = gen.binomial(np.rint(n_test * Nm[small]).astype(np.int64), p[small]) / n_test
    return PanelDraws(N, Nm, Sm, Sf, Y, se is None, seed_key)


#: {(shape, generator state): (Normal numbers, the state after drawing them)}: :func:`remembered_normals`.
_NORMALS: dict = {}
_NORMALS_KEPT = 8  # entries (≈ 2.6 MB each for 1000 draws × 64 cells × 5 folds)
_NORMALS_LOCK = threading.Lock()


def remembered_normals(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """``gen.standard_normal(shape)`` (read-only), remembered by the generator's state: every panel's
    generator starts from the same seed (``storage.panel.RNG_SEED``), so the panels of one shape draw
    the same test-stage numbers — ≈ 4 ms a panel of 64 cells, 0.11–0.14 s of a 32-panel request.
    The first panel draws them; the others take them and move their generator to the state drawing
    would have left (the ziggurat's rejections make that state the draw's own, so it is kept, not
    computed): the same numbers, the same generator afterwards (tests/storage/test_evidence.py)."""
    bits = gen.bit_generator
    if type(bits) is not np.random.PCG64:  # only PCG64's state is read here (numpy's default generator)
        return gen.standard_normal(shape)
    before = bits.state
    key = (tuple(shape), before["state"]["state"], before["state"]["inc"], before["has_uint32"], before["uinteger"])
    kept = _NORMALS.get(key)
    if kept is not None:
        bits.state = kept[1]
        return kept[0]
    z = gen.standard_normal(shape)
    z.flags.writeable = False
    with _NORMALS_LOCK:
        _NORMALS[key] = (z, bits.state)
        while len(_NORMALS) > _NORMALS_KEPT:
            del _NORMALS[next(iter(_NORMALS))]  # the oldest
    return z


def draw(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL) -> PanelDraws:
    """The shared bootstrap of ``panel`` under the seed draw ``seeds``: folds over the panel's own seeds."""
    seeds.columns(panel.seeds)  # raises if a panel label is not in the draw
    pos = np.searchsorted(seeds.labels, np.asarray(panel.seeds, np.int64))
    return draw_arrays(panel.E, panel.fixed, panel.n_test, seeds.counts[:, pos], panel_folds(panel.E), rng,
                       level=level, se=panel.se, seed_key=seeds.key)


def counts_of(columns: np.ndarray, K: int) -> np.ndarray:
    """(n_boot, K) times each column was chosen, from chosen columns (n_boot, slots), −1 = absent."""
    cols = np.asarray(columns, np.int64)
    return (cols[:, :, None] == np.arange(K)[None, None, :]).sum(1).astype(float)


def draws_for(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL) -> PanelDraws:
    """:func:`draw`, once per (panel object, seed draw, level): every answer computed on the same
    :class:`Panel` reuses the draws (the first caller's generator makes them)."""
    memo = panel.__dict__.setdefault("_draws", {})
    key = (seeds.key, float(level))
    if key not in memo:
        memo[key] = draw(panel, seeds, rng, level=level)
    return memo[key]


def forget_draws(panel: Panel) -> None:
    """Free the draws :func:`draws_for` keeps on ``panel``."""
    panel.__dict__.pop("_draws", None)


__all__ = ["BORROW_FROM", "MAX_FOLDS", "NORMAL_MIN_VAR", "PanelDraws", "borrowed_seed_sd", "cell_spread", "counts_of", "draw", "draw_arrays", "draws_for", "forget_draws", "remembered_normals",
           "fold_selection", "panel_folds", "seed_spreads"]
