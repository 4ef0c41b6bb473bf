"""AdamW vs Adam on one shared test set: the comparison's test-set noise paired as well as its seeds.

Both optimizers of a comparison are scored on the *same* test examples, and a test set has hard
examples that every run gets wrong: the two sides' test errors move together from one test set to
the next. :func:`storage.evidence.compare` draws each side's test noise independently (a binomial per
cell), so that shared part enters the interval of r = (e_c − e_d)/e_c twice instead of cancelling.
Here the test set itself is resampled, once per draw, for both sides:

* **Test stage (paired).** Every run records which test examples it got wrong (the trial attr
  ``test_wrong``: one bit per example, :func:`decode_wrong`). Draw b gives every example i a weight
  w_bi ~ Poisson(1) (the Poisson bootstrap of the n_test examples), shared by every run of both
  sides. A cell's test stage in draw b is its runs' mean error under those weights minus their
  recorded mean: Δ_bc = Σ_i w_bi·ȳ_ci / Σ_i w_bi − ē_c, ȳ_ci the share of the cell's measured runs that
  got example i wrong. Only the examples some run got wrong need a weight of their own (the union
  U); the others' total weight is one Poisson(n_test − |U|) per draw. The numerators are one product
  (n_boot × |U|)·(|U| × cells) in float32 (exact: integer sums below 2²⁴).
* **Seed stage (as today).** The same :class:`~storage.evidence.base.SeedDraws` counts: a chosen
  slot's value is ē + g·(e_s − ē) + Δ_bc (Δ for measured slots only), summed per fold of labels, so
  cross-fitting, validation and the naive minimum repeat each side's selection in every draw as
  :func:`storage.evidence.best_error` does (``expand="variance"``). The test stage is the cell's,
  not each chosen run's own reweighted error: a label drawn three times would otherwise carry its
  run's example-level noise three times (measured: intervals 2× too wide with 3 seeds).
* **The gain.** g is :func:`storage.evidence.noise.seed_gain`'s, with the test-stage variance that
  the seeds' spread s² already contains measured on the runs themselves: v = Σ_s Σ_i (wrong_si −
  ȳ_i)² / ((k − 1)·n²) — the part of a run's error that reweighting the examples moves *relative to
  the cell's other runs*. (The binomial v̂ of the independent form also counts the examples every
  run gets wrong; subtracting it would shrink the seed stage where runs agree.) A cell mean's draws
  then have variance (s² − v)/k + Var_i(ȳ_i)/n ≈ s²/k + Var_i(p_i)/n: the seeds' spread plus the
  test set's shared part (p_i the chance that a run gets example i wrong), which cancels in
  e_c − e_d on the examples both optimizers find hard.
* **Which cells.** Reweighting is restricted to the cells the selection can pick: those chosen in
  any draw of the independent bootstrap (:func:`storage.evidence.noise.draws_for`, same selection)
  or at the point estimate. A draw that picks another cell reads it from the independent draws
  (its test noise unpaired): rare by construction.

Falls back to :func:`storage.evidence.compare` — with a note saying why — where a side is not an
error metric, the two sides' n_test differ, or a run the selection can pick carries no mask of that
length, or a mask disagrees with the recorded value (studies recorded before ``test_wrong``).

Measured (tests/storage/test_paired.py: planted panels whose runs share per-example difficulty,
r = 10%; docs/evidence.md, "The comparison's test set, paired"): coverage, width against the
unpaired form, cost.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from storage.evidence import noise
from storage.evidence.base import DEFAULT_LEVEL, EXPAND_LAND, SEEDS, TEST_SET, Panel, Rng, SeedDraws, _rng
from storage.evidence.cells import percentile_interval
from storage.evidence.comparisons import Comparison, compare, relative_improvement
from storage.evidence.selection import BestError, naive, validation

#: What a paired comparison names as its noise.
PAIRED_TEST_SET = "test set (paired)"
#: A mask's mean and the recorded value must agree this closely (they are the same count over n_test).
MASK_TOL = 1e-9
#: Draws whose test weights are made at once (bounds memory to DRAW_CHUNK × |U| float32).
DRAW_CHUNK = 256
#: Poisson(1) weights by table: the quantile at the midpoint of each of 2¹⁶ equal slices of (0, 1), so a
#: uint16 draw indexes it (6× faster than numpy's Poisson sampler). Its mean is 1 and its variance
#: 0.99997; P(k) off by < 1/2¹⁶, k ≥ 9 (P ≈ 1e-6) never drawn — invisible in 1,000 bootstrap draws.
_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, k + 1, dtype=float)) for k in range(20)])
POISSON_TABLE = np.searchsorted(_CDF, (np.arange(2**16) + 0.5) / 2**16, side="right").astype(np.float32)


def decode_wrong(text: str, n: int) -> np.ndarray:
    """The bool (n,) mask of ``trainers.run.encode_wrong``'s text: base64 of numpy.packbits. ValueError
    when it is not base64, not ⌈n/8⌉ bytes long, or sets a padding bit."""
    try:
        raw = np.frombuffer(base64.b64decode(text, validate=True), np.uint8)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"test_wrong is not base64: {exc}") from None
    if raw.size != (n + 7) // 8:
        raise ValueError(f"test_wrong holds {raw.size} bytes; {n} examples need {(n + 7) // 8}")
    bits = np.unpackbits(raw)
    if bits[n:].any():
        raise ValueError("test_wrong sets bits past its n examples")
    return bits[:n].astype(bool)


#: The masks of a side's runs: {(cell, column): bool (n_test,) or the recorded text}, or a function that
#: reads them for the runs asked for (a list of (cell, column)) — storage reads only the selectable runs.
Masks = Mapping[tuple[int, int], object] | Callable[[list[tuple[int, int]]], Mapping[tuple[int, int], object]]


@dataclass(frozen=True, eq=False)
class Side:
    """One side of a comparison: its panel, its answer's :class:`BestError` (point estimate, method,
    seed draw), the masks of its runs (:data:`Masks`; None: not read), and the validation panel when
    the selection used one."""

    panel: Panel
    best: BestError
    masks: Masks | None = None
    validation_panel: Panel | None = None


def _selection_cells(side: Side, seeds: SeedDraws, gen: np.random.Generator, drawn: noise.PanelDraws) -> np.ndarray:
    """Cells the side's selection picks at the point estimate or in any independent draw (bool (n_cells,))."""
    C = len(side.panel.E)
    picked = [np.atleast_1d(np.asarray(side.best.seed_cells or (side.best.cell,), np.int64))]
    method = side.best.method
    if method == "cross_fit":
        picked.append(noise.fold_selection(drawn.sums(EXPAND_LAND), drawn.N)[2].ravel())
    elif method == "validation":
        vdrawn = noise.draws_for(side.validation_panel, seeds, gen, level=side.best.level)
        picked.append(validation(vdrawn.means(EXPAND_LAND)[..., None], drawn.means(EXPAND_LAND)[..., None]).cells)
    else:
        picked.append(naive(drawn.means(EXPAND_LAND)[..., None]).cells)
    cells = np.concatenate(picked)
    out = np.zeros(C, bool)
    out[cells[(cells >= 0) & (cells < C)]] = True
    return out


def _runs(side: Side, cells: np.ndarray, n: int) -> tuple[list[tuple[int, int]], list[np.ndarray]] | str:
    """The measured runs of ``cells`` and their masks, or why they cannot be paired."""
    p = side.panel
    measured = np.isfinite(p.E) & ~p.fixed
    wanted = [(int(c), int(j)) for c, j in zip(*np.nonzero(measured & cells[:, None]))]
    found = side.masks(wanted) if callable(side.masks) else side.masks
    runs, masks = [], []
    for c, j in wanted:
        text = found.get((c, j))
        if text is None:
            return "a run the selection can pick has no test_wrong (recorded before runs kept their wrong examples)"
        try:
            m = decode_wrong(text, n) if isinstance(text, str) else np.asarray(text, bool)
        except ValueError as exc:
            return f"a run's test_wrong cannot be read: {exc}"
        if m.shape != (n,):
            return f"a run's test_wrong has {m.size} examples, not n_test = {n}"
        if abs(m.mean() - p.E[c, j]) > MASK_TOL:
            return "a run's test_wrong does not match its recorded error (another test set?)"
        runs.append((int(c), int(j)))
        masks.append(m)
    return runs, masks


def reweighted_errors(wrong: np.ndarray, n_boot: int, rng: Rng = None) -> np.ndarray:
    """Column errors under Poisson(1) weights on the test examples, shared by every column:
    ``wrong`` (n_test, columns) counts of wrong runs per example (bool for one run) →
    Σ_i w_bi·wrong_ic / Σ_i w_bi (n_boot, columns) float64 (module doc: only the examples some run got
    wrong get weights of their own; the others' total is one Poisson per draw)."""
    gen = _rng(rng)
    wrong = np.asarray(wrong)
    n, R = wrong.shape
    union = np.flatnonzero((wrong != 0).any(1))
    sub = wrong[union].astype(np.float32)  # (|U|, R): small integers, so the float32 sums are exact
    out = np.empty((n_boot, R))
    for start in range(0, n_boot, DRAW_CHUNK):
        b = min(DRAW_CHUNK, n_boot - start)
        w = POISSON_TABLE[gen.integers(0, 2**16, size=(b, union.size), dtype=np.uint16)]
        total = w.sum(1, dtype=np.float64) + gen.poisson(float(n - union.size), size=b)
        total = np.maximum(total, 1.0)  # an all-zero draw (n tiny): errors 0, not NaN
        out[start:start + b] = (w @ sub).astype(np.float64) / total[:, None]
    return out


def _interaction_var(E: np.ndarray, runs: list[tuple[int, int]], masks: list[np.ndarray], n: int) -> np.ndarray:
    """Per run (n_cells, K): the test-stage variance the seeds' spread already holds (module doc, "the
    gain"); the binomial v̂ where a cell has fewer than two masked runs."""
    with np.errstate(invalid="ignore"):
        v = np.where(np.isfinite(E), E * (1 - E) / max(n - 1, 1), 0.0)
    for c, idx in _by_cell(runs).items():
        k = len(idx)
        if k < 2:
            continue
        M = np.stack([masks[i] for i in idx]).astype(np.float64)  # (k, n)
        ybar = M.mean(0)
        ss = M.sum() - k * float(ybar @ ybar)  # Σ_s Σ_i (wrong_si − ȳ_i)²
        v[c, [runs[i][1] for i in idx]] = max(ss, 0.0) / ((k - 1) * n * n)
    return v


def _by_cell(runs: list[tuple[int, int]]) -> dict[int, list[int]]:
    """{cell: positions in ``runs`` of its runs}, cells in order."""
    out: dict[int, list[int]] = {}
    for i, (c, _) in enumerate(runs):
        out.setdefault(c, []).append(i)
    return dict(sorted(out.items()))


def _paired_sums(side: Side, seeds: SeedDraws, cells: list[int], shift: np.ndarray, v: np.ndarray,
                 drawn: noise.PanelDraws, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fold sums S and counts N (n_boot, n_cells, F): the paired form on ``cells``, the independent
    draws ``drawn`` elsewhere. ``shift`` (n_boot, len(cells)): each cell's test stage, the mean of its
    measured runs' errors under the draw's test weights minus their recorded mean."""
    p = side.panel
    E = p.E
    finite = np.isfinite(E)
    measured = finite & ~p.fixed
    pos = np.searchsorted(seeds.labels, np.asarray(p.seeds, np.int64))
    counts, folds = seeds.counts[:, pos], noise.panel_folds(E)
    F = drawn.N.shape[-1]
    onehot = (folds[:, None] == np.arange(F)[None, :]).astype(float)  # (K, F)
    centre, g = noise.seed_gain(E, p.fixed, None, expand=EXPAND_LAND, se=np.sqrt(v))
    centre = np.nan_to_num(centre)
    # each (cell, seed) value after the seed stage, clipped to [0, 1] as storage.evidence.noise clips it
    X = np.where(finite, np.clip(centre[:, None] + g[:, None] * (E - centre[:, None]), 0.0, 1.0), 0.0)
    sel = np.asarray(cells, np.int64)
    fin, xs, ms = finite[sel].astype(float), X[sel], measured[sel].astype(float)
    N = np.einsum("bk,ck,kf->bcf", counts, fin, onehot)
    SX = np.einsum("bk,ck,kf->bcf", counts, xs, onehot)
    Nm = np.einsum("bk,ck,kf->bcf", counts, ms, onehot)
    lost = (N.sum(-1) == 0) & fin.any(1)[None, :]
    if lost.any():  # a cell without any chosen label resamples its own seeds (as storage.evidence.noise)
        b, c = np.nonzero(lost)
        own = noise._own_counts(finite[sel], c, gen)  # (m, K)
        N[b, c], SX[b, c], Nm[b, c] = (own * fin[c]) @ onehot, (own * xs[c]) @ onehot, (own * ms[c]) @ onehot
    S = drawn.sums(EXPAND_LAND).copy()
    Nall = drawn.N.copy()
    S[:, sel] = SX + Nm * shift[:, :, None]
    Nall[:, sel] = N
    return S, Nall


def _selected_draws(side: Side, S: np.ndarray, N: np.ndarray, seeds: SeedDraws, gen) -> np.ndarray:
    """Each draw's reported best error (n_boot,) by the side's method, from fold sums."""
    method = side.best.method
    if method == "cross_fit":
        return noise.fold_selection(S, N)[0]
    tot_S, tot_N = S.sum(-1), N.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.clip(np.where(tot_N > 0, tot_S / tot_N, np.nan), 0.0, 1.0)
    if method == "validation":
        vdrawn = noise.draws_for(side.validation_panel, seeds, gen, level=side.best.level)
        return validation(vdrawn.means(EXPAND_LAND)[..., None], means[..., None]).error
    return naive(means[..., None]).error


def why_not_paired(coupled: Side, decoupled: Side, seeds: SeedDraws) -> str | None:
    """Why the two sides cannot share test draws (None: they can, as far as the panels tell)."""
    for side in (coupled, decoupled):
        if side.panel.se is not None:
            return "a loss metric records no wrong examples"
        if side.panel.n_test is None:
            return "the study recorded no n_test"
        if side.best.seed_key != seeds.key:
            return "the two sides were not resampled with this seed draw"
        if side.best.method == "validation" and side.validation_panel is None:
            return "the validation panel is missing"
        if side.best.error is None:
            return "a side has no best error"
    if coupled.panel.n_test != decoupled.panel.n_test:
        return f"the two sides' test sets differ in size ({coupled.panel.n_test} vs {decoupled.panel.n_test})"
    if coupled.masks is None or decoupled.masks is None:
        return "the runs' test_wrong were not read"
    return None


def compare_paired(coupled: Side, decoupled: Side, seeds: SeedDraws, rng: Rng = None, *,
                   level: float = DEFAULT_LEVEL) -> Comparison:
    """r = (e_coupled − e_decoupled)/e_coupled with its interval, the test set resampled once per draw
    for both sides and the seeds paired (module doc); ``paired_test_set`` says whether it was. Falls
    back to :func:`storage.evidence.compare` (independent test noise) with a note saying why."""
    gen = _rng(rng)
    why = why_not_paired(coupled, decoupled, seeds)
    sides = (coupled, decoupled)
    if why is None:
        n = int(coupled.panel.n_test)
        drawn = [noise.draws_for(s.panel, seeds, gen, level=s.best.level) for s in sides]
        cells = [_selection_cells(s, seeds, gen, d) for s, d in zip(sides, drawn)]
        found = [_runs(s, c, n) for s, c in zip(sides, cells)]
        why = next((f for f in found if isinstance(f, str)), None)
    if why is not None:
        base = compare(coupled.best, decoupled.best, level=level)
        return Comparison(base.improvement, base.ci, base.coupled_error, base.decoupled_error, base.method,
                          base.paired, level, base.n_valid_draws,
                          (*base.notes, f"test set not paired: {why}; each side's test noise is drawn independently"),
                          paired_test_set=False, sources=_sources(sides, paired=False))
    groups = [_by_cell(runs) for runs, _ in found]
    columns = [np.sum([masks[i] for i in idx], 0, dtype=np.int32) for (_, masks), by in zip(found, groups)
               for idx in by.values()]  # per selectable cell: how many of its runs got each example wrong
    wrong = np.stack(columns, 1) if columns else np.zeros((n, 0), np.int32)
    x = reweighted_errors(wrong, seeds.n_boot, gen)
    boots, start = [], 0
    for s, d, (runs, masks), by in zip(sides, drawn, found, groups):
        k = np.array([len(idx) for idx in by.values()], float)
        recorded = np.array([s.panel.E[runs[idx[0]][0], [runs[i][1] for i in idx]].sum() for idx in by.values()])
        shift = (x[:, start:start + len(by)] - recorded[None, :]) / k[None, :]
        start += len(by)
        v = _interaction_var(s.panel.E, runs, masks, n)
        S, N = _paired_sums(s, seeds, list(by), shift, v, d, gen)
        boots.append(_selected_draws(s, S, N, seeds, gen))
    r_boot = relative_improvement(*boots)
    valid = np.isfinite(r_boot)
    ce, de = coupled.best.error, decoupled.best.error
    r = relative_improvement(ce, de)
    ci = tuple(float(q) for q in percentile_interval(r_boot[valid], level)) if valid.any() and np.isfinite(r) else None
    notes = ["test set paired: both sides reweight the same test examples in every draw"]
    if coupled.best.method != decoupled.best.method:
        notes.append(f"selected by different methods: {coupled.best.method} vs {decoupled.best.method}")
    method = coupled.best.method if coupled.best.method == decoupled.best.method else \
        f"{coupled.best.method}/{decoupled.best.method}"
    return Comparison(float(r) if np.isfinite(r) else None, ci, ce, de, method, True, level, int(valid.sum()),
                      tuple(notes), paired_test_set=True, sources=_sources(sides, paired=True))


def _sources(sides, *, paired: bool) -> tuple[str, ...]:
    """The noise a comparison's interval includes: the sides' sources, the test set named paired when it is."""
    out = list(dict.fromkeys(x for s in sides for x in s.best.sources))
    return tuple(PAIRED_TEST_SET if (paired and x == TEST_SET) else x for x in out if x in (TEST_SET, SEEDS))


def locate(panel: Panel, lr_keys, wd_keys, seeds) -> tuple[np.ndarray, np.ndarray]:
    """(cell, column) of runs in ``panel`` from their grid keys (``storage.analysis.grid_key``) and seed
    labels; −1 where a run is not on the panel's grid."""
    lr, wd, sd = (np.asarray(x) for x in (lr_keys, wd_keys, seeds))
    ia = np.searchsorted(panel.alphas, lr)
    iw = np.searchsorted(panel.wd_norms, wd)
    col = {int(s): j for j, s in enumerate(panel.seeds)}
    js = np.array([col.get(int(s), -1) for s in sd], np.int64)
    ok = (ia < panel.alphas.size) & (iw < panel.wd_norms.size) & (js >= 0)
    ok &= np.take(panel.alphas, np.minimum(ia, panel.alphas.size - 1)) == lr
    ok &= np.take(panel.wd_norms, np.minimum(iw, panel.wd_norms.size - 1)) == wd
    cells = np.where(ok, ia * panel.wd_norms.size + iw, -1)
    return cells, np.where(ok, js, -1)


__all__ = ["PAIRED_TEST_SET", "Masks", "Side", "compare_paired", "decode_wrong", "locate", "reweighted_errors",
           "why_not_paired"]
