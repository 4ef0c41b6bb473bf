"""Evidence for Basin's answers: intervals that say how sure each number is (pure numpy + stdlib).

Symbols as in the paper (Loshchilov & Hutter, ICLR 2019): α the initial learning rate, λ_norm the
normalised weight decay, λ = λ_norm·√(b/(B·T)) the raw decay, T the budget in epochs, b the batch
size, B the number of training points.

Inputs
------
A *panel* (one heatmap: the grid α_i, i < nα, × λ_norm_j, j < nλ, at one budget T) is a
:class:`Panel`: ``E`` (n_cells, n_seeds) final test errors, NaN where a cell lacks a seed; ``fixed``
(same shape) True where a value is not a test-set measurement (a diverged run recorded at chance
error 1 − 1/C); ``n_test`` the test-set size (None: unknown, no test noise modelled); ``seeds`` the
label of each column. Cells are row-major (α major, λ_norm minor): ``reshape(nα, nλ)`` is the grid.
Every answer takes one :class:`SeedDraws` (:func:`seed_draws` over the union of the labels of all
panels to be compared) and a numpy Generator (or an int seed).

Noise model (two sources)
-------------------------
*Test set.* A value e measured on n_test examples is a proportion: n_test·e ~ Binomial(n_test, p).
(For a loss metric — a mean loss, not a proportion — the Panel carries each value's standard error
``se`` and the test stage adds Normal(0, se²) instead.)
The bootstrap redraws it as Binomial(n_test, p̃)/n_test. ``fixed`` values carry no test noise (with
one seed, a diverged cell's interval is the point 1 − 1/C: it is not a measurement).
Floor: p̃ is clipped to [½/(n_test+1), 1 − ½/(n_test+1)] (Jeffreys' ½-count), which changes only
e = 0 and e = 1 — so a measured value's interval is never zero-width: e = 0 on 1000 examples gives
[0, 0.002], not [0, 0].

*Seeds.* Runs with a common seed label share initialisation and data order, so seeds are resampled
*paired*: :func:`seed_draws` draws, once, K labels with replacement per bootstrap draw, and every
cell of every panel compared with it uses that draw (:meth:`SeedDraws.columns`). A cell that lacks
some chosen labels averages those it has; one that has none of them resamples its own seeds.

Two stages, for a cell with k ≥ 2 finite values e_s (mean ē, sample variance s², ddof 1):

1. seed stage — the chosen seed's value becomes x = ē + g·(e_s − ē);
2. test stage — x is redrawn as Binomial(n_test, x)/n_test (measured values only).

s² already contains the test noise v̂ = mean_s e_s(1 − e_s)/(n_test − 1) (0 for fixed values) that
stage 2 adds again, so g is set for a target: the draws' variance of the cell mean is τ²/k with
τ² = max(f²·s², v̂) — the seeds' spread, never less than the test noise alone — i.e.
g = √(k/(k − 1))·√((τ² − v̂)/s²) (the √(k/(k − 1)) undoes resampling's (k − 1)/k shrinkage). f:

* ``expand="t"``: f = t_{k−1}/z at the draws' ``level`` (Hesterberg's expanded percentile interval,
  2015): a mean of k seeds has its variance estimated on k − 1 degrees of freedom, and a normal
  quantile under-covers (3 seeds: t₂ = 4.30 vs z = 1.96). Used for statistics of one or two cells:
  cell intervals, P(best), plausible optima, bracketing and edge-location tests.
* ``expand="variance"``: f = 1, the bootstrap variance is unbiased. Used for statistics that pool
  many cells (λ_norm*(α), the coupling slope, λ_norm*(T) and its exponent), where the t factor on
  every cell over-covers (measured: 0.98–1.00 for the slope with 3 seeds), and for statistics that
  select a cell in every draw (best errors, hence comparisons), where it shifts the interval.

With one seed only the test stage acts: the parametric bootstrap of the binomial.

Measured coverage of nominal 95% intervals (n_test = 1000; reproduced by tests/storage/test_evidence.py):

=============================================  =========  ================================
target                                         seeds      coverage
=============================================  =========  ================================
cell error p, p = 0.02 / 0.05 / 0.1            1          0.954 / 0.957 / 0.952 (1000 reps)
cell seed-mean, p 0.02–0.1, σ 0.003–0.01       3, "t"     0.953–0.986 (1000–8000 reps, 5 cases)
  the same with ``expand="variance"``          3          0.827–0.940 (why "t")
  the same with 2 / 5 seeds, "t"               2 / 5      0.974–0.992 / 0.949–0.979
budget exponent k, k = 0 / −½ (4 budgets)      1 and 3    0.98–1.00 (200 reps, joint fit; bench/calibration.py)
=============================================  =========  ================================

Planted panels: 8 × 8 grids in powers of 2, e = 0.04 + 0.002·(i − 3.5)² + b·(j − j*(i))², seed
noise σ = 0.005 per run; b = 0.01 makes neighbouring cells near the minimum differ by 1–3 points.
The coupling slopes' calibration is :mod:`storage.evidence.landscape`'s (docs/evidence.md).

Answers
-------
* Cells (:func:`cell_evidence`): mean, percentile interval, P(best) (fraction of draws in which the
  cell is the minimum, ties split), and the plausible optima: c is *distinguishably worse* than the
  observed best cell b when the one-sided paired bootstrap test rejects at level 1 − ``level`` (5%):
  the fraction of draws with e*_c − e*_b ≤ 0 is below 5%; the plausible set is every cell not
  distinguishably worse. One test per cell, not corrected for multiplicity, against a best that was
  itself selected: with 8 tied optima (1 seed) each is retained in 78% of data sets.
* λ_norm*(α) (:func:`lambda_star`): per α row, the argmin of the mean error over x = log λ_norm,
  refined by the vertex of the least-squares parabola through the LAMBDA_WINDOW = 5 cells centred
  on the minimum (shifted inward at the border), clipped to LAMBDA_CLIP = 1 grid step around the
  minimum and to the grid; cells whose every seed diverged stay out of the parabola. It recovers a
  parabola's vertex exactly. Ties: the tied cell nearest the mean tied position (first of equals).
  ``censored``: the minimum is on the row's first/last finite λ_norm column. Why 5 cells and not the
  3-point parabola (``window=3``): with noise comparable to the curvature, the 3-point vertex jumps
  with the argmin; the 5-cell vertex has half the sampling spread and its slope interval covers
  0.94–0.99 over b = 0.005–0.02 where the 3-point one covers 0.92–1.00. The price: on a basin that
  is asymmetric over ±2 octaves the vertex is pulled toward the shallow side (by < 1 step).
* Coupling: :mod:`storage.evidence.landscape` (the valley of a quadratic surface and the
  over-regularisation edge, from every non-diverged cell; its docstring and docs/evidence.md carry
  its calibration).
* Winner's curse (:func:`best_error`): ``cross_fit`` (≥ 2 seeds: for each held-out seed s choose the
  cell on the mean of the other seeds, report its error on s; mean over s), ``validation`` (choose on
  a validation-error panel of the same runs, report the test error), ``naive`` (argmin of the mean:
  biased low). The interval repeats the selection inside every draw; in a draw, slots with the same
  label are held out together, and draws that chose a single label cannot cross-fit and are left out
  (1/9 of them with 3 seeds). Measured on 64 equal cells (p = 0.05, 3 seeds, σ = 0.005, 400 reps):
  cross-fit 0.0497 ± 0.0003, validation 0.0501 ± 0.0002 (runs without seed noise), naive 0.0388.
  What each targets: cross-fitting reports held-out seeds, so it estimates the chosen cell's error
  for a fresh seed; validation reports the selected runs themselves — with seed noise it picks
  lucky runs, whose test error is truly lower (0.0463 with σ = 0.005): right for "these runs", low
  for "this setting". All seeds share one test set: a cell × test-set effect common to its seeds
  is not removed by cross-fitting; a validation split removes it.
* Comparisons (:func:`compare`): r = (e_coupled − e_decoupled)/e_coupled of the two selected
  settings, per draw: paired when both sides used the same :class:`SeedDraws` (same resampled labels
  on both sides), with each value's own test noise.
* Budgets (:func:`budget_scaling`, Appendix B.1; :mod:`storage.evidence.budgets`): one joint fit over
  the budgets' profiles min_α e(α, λ_norm) — the coupling's valley and edge estimators with log T as
  the row axis — gives the exponent k of λ_norm* ∝ T^k; raw λ* ∝ T^(k − ½) exactly. Predictions for k:
  the paper's √ rule 0 (raw λ* ∝ T^−½), τ = 1/(η_t·λ) a fixed fraction of the run −½ (raw λ* ∝
  T^−1), τ fixed in epochs +½ (raw λ* flat; Wang & Aitchison, arXiv 2405.13698). Favoured: the only
  prediction the interval contains; none when it contains none; "cannot tell apart" when several.

Computation: :mod:`storage.evidence.noise` draws the two stages on counts — how often each draw
chose each seed label — with one pooled test-noise draw per cell and fold of labels, so the cost
no longer grows with the seeds resampled in every slot; one set of draws per panel serves the cell
intervals, P(best), the plausible optima, the best error, the coupling and the budget profile
(its docstring states what the pooling changes). Measured: bench/answers_speed.py, docs/benchmarks.md.

Modules (one rule each, re-exported here): ``base`` (Panel, SeedDraws, the tie rule and its one
argmin), ``noise`` (the noise model and the shared draws), ``cells`` (intervals, P(best), plausible
optima), ``rows`` (λ_norm*(α), usable rows, slopes, the profile over α), ``selection`` (the winner's
curse), ``comparisons`` and ``paired`` (AdamW vs Adam, on one shared test set where the runs recorded
which examples they got wrong), ``verdicts`` (reading an interval), ``landscape`` (coupling),
``budgets``, ``simulate`` (planted landscapes for calibration).
"""

from __future__ import annotations

from storage.constants import DEFAULT_BOOT
from storage.evidence.base import (DEFAULT_LEVEL, EXPAND_LAND, EXPANSIONS, LAMBDA_CLIP, LAMBDA_WINDOW, METHODS,
                                   MIN_BUDGETS, MIN_POINTS, PREDICTIONS, SEEDS, TEST_SET, TIE_DECIMALS, Panel, Rng,
                                   SeedDraws, argmin, noise_sources, not_above, seed_draws, tie_key)
from storage.evidence.noise import (PanelDraws, cell_mean_draws, draws_for, expansion, panel_draws, seed_gain,
                                    t_quantile)
from storage.evidence.cells import (CellEvidence, best_cell, cell_evidence, p_not_worse, percentile_interval,
                                    plausible_optima, prob_best)
from storage.evidence.rows import Argmin, all_fixed, lambda_star, profile, slope, usable_rows
from storage.evidence.selection import BestError, Selection, best_error, cross_fit, default_method, naive, validation
from storage.evidence.comparisons import Comparison, compare, relative_improvement
from storage.evidence.paired import compare_paired
from storage.evidence.budgets import BudgetScaling, budget_scaling, consistent_predictions, favoured_prediction

__all__ = [
    "DEFAULT_BOOT", "DEFAULT_LEVEL", "EXPAND_LAND", "EXPANSIONS", "LAMBDA_CLIP", "LAMBDA_WINDOW", "METHODS",
    "MIN_BUDGETS", "MIN_POINTS", "PREDICTIONS", "SEEDS", "TEST_SET", "TIE_DECIMALS", "Argmin", "BestError",
    "BudgetScaling", "CellEvidence", "Comparison", "Panel", "PanelDraws", "Rng", "SeedDraws", "Selection", "all_fixed",
    "argmin", "best_cell", "best_error", "budget_scaling", "cell_evidence", "cell_mean_draws", "compare",
    "compare_paired",
    "consistent_predictions", "cross_fit", "default_method", "draws_for", "expansion", "favoured_prediction",
    "lambda_star", "naive", "noise_sources", "not_above", "p_not_worse", "panel_draws", "percentile_interval",
    "plausible_optima", "prob_best", "profile", "relative_improvement", "seed_draws", "seed_gain", "slope",
    "t_quantile", "tie_key", "usable_rows", "validation",
]
