"""Adaptive seeds against the full grid, side by side in one run (issue 19).

Part 1, planted (seconds): each planted shape of :mod:`storage.evidence.simulate` with 3 seeds at the
demo's noise (n_test 20,000, seed sd σ = 0.0015) and at n_test 1,000 (σ = 0.005): the full panel's
coupling verdict against the verdict of what an adaptive sweep would have recorded of it
(:func:`storage.evidence.simulate.adaptive`: the rounds of ``study.adaptive`` by the same rules),
the share of runs it used, right / opposite verdicts, the coverage of the deciding slope's
interval, and the cross-fitted best error of both against the planted minimum.

Part 2, the demo (``--demo``, minutes): runs the demo spec twice on this machine, one after the other,
into two fresh SQLite files — ``basin sweep SPEC --full-grid`` (every seed on every cell) and
``basin sweep SPEC`` (adaptive rounds, the spec's ``[adaptive]`` table) — timing each, then prints
the runs and wall time of each and the Figure 2 claims (``study.reproduce``'s coupling and
comparison claims, what ``basin reproduce`` prints) read from each database side by side.
``--full-db URL`` reuses a full-grid database instead of running it.

    .venv/bin/python bench/adaptive.py                      # planted only
    .venv/bin/python bench/adaptive.py --demo               # + both demo sweeps (≈ 25 min on 2 cores)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import evidence as ev  # noqa: E402
from storage.evidence import landscape as L  # noqa: E402
from storage.evidence import simulate as S  # noqa: E402

SHAPES = ("coupled-bowl", "decoupled-bowl", "coupled-cliff", "decoupled-cliff", "decoupled-tilted", "flat")
BASIN = str(Path(sys.executable).with_name("basin"))


def deciding_ci(c):
    """The interval the verdict rests on first (λ* when it decided, else the edge, else the valley)."""
    names = {"argmin": c.argmin_slope_ci, "edge": c.edge_slope_ci, "valley": c.slope_ci}
    return names[c.rests_on[0]] if c.rests_on else None


def planted(reps: int, boot: int) -> None:
    print(f"## planted, 3 seeds, {reps} replicates a case, {boot} draws")
    print("| shape | n_test, σ | runs (share of the grid) | same verdict as the full grid | right (full) "
          "| right (adaptive) | opposite (adaptive) | deciding CI covers (full / adaptive) "
          "| cross-fitted best error, % (full / adaptive / true) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n_test, sigma in ((20_000, 0.0015), (1000, 0.005)):
        for shape in SHAPES:
            truth = S.SHAPES[shape]
            want = {-1.0: "coupled", 0.0: "decoupled", None: "inconclusive"}[truth]
            other = {"coupled": "decoupled", "decoupled": "coupled"}.get(want)
            rng = np.random.default_rng([n_test, SHAPES.index(shape)])
            rows = []
            for P in S.panels(shape, 3, reps, rng, n_test=n_test, sigma=sigma):
                draws = ev.seed_draws(P.seeds, boot, rng)
                full = L.coupling(P, draws, rng)
                recorded, n = S.adaptive(P, boot, rng)
                ad = L.coupling(recorded, draws, rng)
                cover = [None if truth is None or deciding_ci(c) is None
                         else deciding_ci(c)[0] <= truth <= deciding_ci(c)[1] for c in (full, ad)]
                best = [ev.best_error(x, draws, rng).error for x in (P, recorded)]
                rows.append((n / P.E.size, full.verdict, ad.verdict, *cover, *best))
            share, fv, av, cf, ca, bf, ba = zip(*rows)
            fv, av = np.array(fv), np.array(av)
            cov = lambda xs: f"{np.mean([x for x in xs if x is not None]):.2f}" if any(x is not None for x in xs) else "–"  # noqa: E731
            print(f"| {shape} | {n_test:,}, {sigma:g} | {np.mean(share):.2f} | {np.mean(fv == av):.2f} "
                  f"| {np.mean(fv == want):.2f} | {np.mean(av == want):.2f} "
                  f"| {np.mean(av == other) if other else 0:.2f} | {cov(cf)} / {cov(ca)} "
                  f"| {100 * np.mean(bf):.2f} / {100 * np.mean(ba):.2f} / {100 * S.truth(shape)[0].min():.2f} |",
                  flush=True)


def sweep(spec: str, url: str, *flags: str) -> float:
    start = time.perf_counter()
    out = subprocess.run([BASIN, "sweep", spec, "--storage", url, "--quiet", *flags], capture_output=True, text=True)
    took = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"basin sweep {' '.join(flags)} failed: {out.stderr[-2000:]}")
    print(out.stdout.strip())
    print("\n".join(line for line in out.stderr.splitlines() if line.startswith("adaptive")))
    return took


def claims(url: str, spec_path: str, boot: int) -> list:
    import storage
    from study import reproduce
    from study.spec import load_spec

    spec, _ = load_spec(spec_path)
    rdb = storage.open_storage(url, read_only=True)
    return reproduce.coupling_claims(rdb, spec, boot) + reproduce.comparison_claims(rdb, spec, boot)


def trials(url: str) -> int:
    import sqlalchemy as sa

    with sa.create_engine(url).connect() as c:
        return int(c.execute(sa.text("select count(*) from trials where state = 'COMPLETE'")).scalar())


def demo(spec: str, full_db: str | None, boot: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="basin-adaptive-"))
    full_url, ad_url = full_db or f"sqlite:///{tmp}/full.db", f"sqlite:///{tmp}/adaptive.db"
    print(f"\n## the demo: {spec}")
    full_s = None if full_db else sweep(spec, full_url, "--full-grid")
    ad_s = sweep(spec, ad_url)
    fmt = lambda s: "(reused)" if s is None else f"{int(s // 60)} min {s % 60:.0f} s"  # noqa: E731
    print(f"\n| | full grid | adaptive |\n|---|---|---|\n| runs | {trials(full_url)} | {trials(ad_url)} |"
          f"\n| wall time | {fmt(full_s)} | {fmt(ad_s)} |")
    full, ad = claims(full_url, spec, boot), claims(ad_url, spec, boot)
    print("\n| claim | full grid: estimate | verdict | adaptive: estimate | verdict |\n|---|---|---|---|---|")
    for f, a in zip(full, ad):
        print(f"| {f.claim} | {f.estimate} | {f.verdict} | {a.estimate} | {a.verdict} |")
    same = all(f.verdict == a.verdict for f, a in zip(full, ad))
    print(f"\nsame verdicts: {same}; databases in {tmp}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--boot", type=int, default=300)
    ap.add_argument("--demo", action="store_true", help="also run the demo spec full and adaptive")
    ap.add_argument("--spec", default=str(ROOT / "examples" / "figure2-mnist1d.toml"))
    ap.add_argument("--full-db", default=None, help="a full-grid database of --spec to reuse (URL)")
    ap.add_argument("--skip-planted", action="store_true")
    args = ap.parse_args()
    if not args.skip_planted:
        planted(args.reps, args.boot)
    if args.demo:
        demo(args.spec, args.full_db, 1000)


if __name__ == "__main__":
    main()
