"""Calibration of the coupling and budget estimates by simulation: the tables in docs/evidence.md.

For each planted shape of :mod:`storage.evidence.simulate` at 1 and 3 seeds, ``--reps`` replicate
panels (binomial test noise on ``--n-test`` examples, seed noise σ = 0.005 with ≥ 2 seeds) go
through :func:`storage.evidence.landscape.coupling` (what ``storage.coupling`` calls; the test suite
checks on Optuna-written replicates that the storage path gives exactly this). Prints, per case:
the share of right, opposite and inconclusive verdicts, the coverage of the λ_norm*(α), edge and
valley slopes' 95% intervals of the planted slope, and their median point estimates.

Then the budget exponent k of λ_norm* ∝ T^k (:func:`storage.evidence.budget_scaling`, one joint fit
over the budgets' profiles): four budgets whose λ_norm* is planted flat (k = 0, the √ rule) or
∝ T^−½, on the same 8 × 8 bowls; the coverage of k's interval and the share favouring the planted
prediction.

    .venv/bin/python bench/calibration.py                  # 200 replicates, n_test 1,000
    .venv/bin/python bench/calibration.py --reps 400 --n-test 20000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import evidence as ev  # noqa: E402
from storage.evidence import landscape as L  # noqa: E402
from storage.evidence import simulate as S  # noqa: E402

SHAPES = ("coupled-bowl", "decoupled-bowl", "coupled-cliff", "decoupled-cliff", "decoupled-tilted", "flat", "diagonal")


def cover(cis, truth) -> float:
    return float(np.mean([ci is not None and ci[0] <= truth <= ci[1] for ci in cis]))


def median(xs) -> float:
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--boot", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{args.reps} replicates per case, {args.boot} bootstrap draws, n_test = {args.n_test}")
    print("| shape | seeds | right | opposite | inconclusive | λ* CI covers | edge CI covers | valley CI covers "
          "| median λ* slope | median edge slope | median valley slope |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    for shape in SHAPES:
        truth = S.SHAPES[shape]
        for k in (1, 3):
            rng = np.random.default_rng([args.seed, SHAPES.index(shape), k])
            res = [L.coupling(P, ev.seed_draws(P.seeds, args.boot, rng), rng)
                   for P in S.panels(shape, k, args.reps, rng, n_test=args.n_test)]
            verdicts = np.array([c.verdict for c in res])
            if truth is None:
                right, opposite = "–", "–"
                argmin_cov = edge_cov = valley_cov = "–"
            else:
                want = "coupled" if truth == -1.0 else "decoupled"
                other = {"coupled": "decoupled", "decoupled": "coupled"}[want]
                right, opposite = f"{np.mean(verdicts == want):.3f}", f"{np.mean(verdicts == other):.3f}"
                argmin_cov = f"{cover([c.argmin_slope_ci for c in res], truth):.2f}"
                edge_cov = f"{cover([c.edge_slope_ci for c in res], truth):.2f}"
                valley_cov = f"{cover([c.slope_ci for c in res], truth):.2f}"
            print(f"| {shape} | {k} | {right} | {opposite} | {np.mean(verdicts == 'inconclusive'):.3f} | {argmin_cov} "
                  f"| {edge_cov} | {valley_cov} | {median(c.argmin_slope for c in res):+.2f} "
                  f"| {median(c.edge_slope for c in res):+.2f} | {median(c.slope for c in res):+.2f} |",
                  flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")
    budgets(args)


def budgets(args) -> None:
    """The budget exponent on planted bowls whose valley sits at j*(T) (log₂ λ_norm index)."""
    I, J = np.meshgrid(np.arange(S.N), np.arange(S.N), indexing="ij")
    print()
    print("| planted k | seeds | k CI covers | favours the planted prediction | source valley | median k |")
    print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    for k_true, name in ((0.0, "sqrt_rule"), (-0.5, "tau_fraction")):
        for k in (1, 3):
            rng = np.random.default_rng([args.seed, 99, int(-2 * k_true), k])
            hits = fav = val = 0
            ks = []
            for _ in range(args.reps):
                panels = []
                for T in (4, 8, 16, 32):
                    star = 3.3 + k_true * np.log2(T / 4)
                    p = 0.04 + 0.002 * (I - 3.5) ** 2 + 0.01 * (J - star) ** 2
                    runs = np.broadcast_to(p.reshape(-1, 1), (p.size, k)).astype(float)
                    if k > 1:
                        runs = runs + 0.005 * rng.standard_normal(runs.shape)
                    runs = rng.binomial(args.n_test, np.clip(runs, 0, 1)) / args.n_test
                    panels.append(ev.Panel(runs, np.zeros(runs.shape, bool), args.n_test, S.ALPHAS, S.WDS,
                                           tuple(range(k)), T, chance=S.CHANCE))
                bs = ev.budget_scaling(panels, ev.seed_draws(range(k), args.boot, rng), rng)
                hits += bs.k_ci is not None and bs.k_ci[0] <= k_true <= bs.k_ci[1]
                fav += bs.favoured == name
                val += bs.k_source == "valley"
                ks.append(bs.k)
            n = args.reps
            print(f"| {k_true:+.1f} | {k} | {hits / n:.2f} | {fav / n:.2f} | {val / n:.2f} | {median(ks):+.3f} |",
                  flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
