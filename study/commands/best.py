"""``basin best``: answers from a sweep's storage, for people and for scripts.

``basin best`` prints, per (sweep, optimizer, schedule, budget T), the (α, λ_norm) with the lowest
mean final test error over seeds, then the headline comparisons (AdamW vs Adam, SGDW vs SGD)
where both members exist. Views: ``--by budget`` (λ_norm* and raw λ* against T; Appendix B.1
predicts λ* ∝ 1/√T with λ_norm* fixed), ``--coupling`` (is the basin diagonal in (log α,
log λ_norm) — coupled, like SGD/Adam with L2 — or axis-aligned — decoupled, like SGDW/AdamW?),
``--headline`` (only the comparisons). ``--json`` prints a list of objects, ``--csv`` a table.
Every number carries its 95% interval (bootstrap over the test set and, with ≥ 2 seeds, the
seeds), and the best setting's error is reported on noise it was not selected on.

Bad input prints one line on stderr naming the problem and the fix, and exits 2; a storage with
nothing recorded exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from storage.cli_kit import EXIT_EMPTY, EXIT_OK, fail, non_negative_float, pipe_safe, positive_int, storage_args
from storage.constants import DEFAULT_BOOT, DEFAULT_TOL, FIT_TRAIN_ERROR
from storage.json_ready import jsonable, records

if TYPE_CHECKING:  # pandas is imported by the answers themselves, when a command runs
    import pandas as pd


def register(subparsers) -> None:
    best = subparsers.add_parser(
        "best",
        help="best (α, λ_norm) per sweep/optimizer/schedule/budget; --by budget, --coupling, --headline",
        description=__doc__.split("\n\n")[1],
    )
    storage_args(best)
    best.add_argument("--optimizer", action="append", metavar="NAME",
                      help="only these optimizers (repeat, or comma-separate)")
    best.add_argument("--schedule", action="append", metavar="NAME", help="only these schedules (repeat, or comma-separate)")
    view = best.add_mutually_exclusive_group()
    view.add_argument("--by", choices=["budget"], help="λ_norm* and raw λ* against the budget T")
    view.add_argument("--coupling", action="store_true", help="coupling of each panel: edge and valley slopes with intervals, the verdict")
    view.add_argument("--headline", action="store_true", help="only AdamW vs Adam and SGDW vs SGD")
    out = best.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list of objects")
    out.add_argument("--csv", action="store_true", help="print CSV")
    best.add_argument("--tol", type=non_negative_float, default=None, metavar="F",
                      help=f"--coupling: the edge's absolute error tolerance above each α row's best (default {DEFAULT_TOL})")
    best.add_argument("--boot", type=positive_int, default=DEFAULT_BOOT, metavar="N",
                      help=f"bootstrap draws behind every interval (default {DEFAULT_BOOT})")
    best.set_defaults(func=run_best)


def _split_names(values: Sequence[str] | None) -> list[str] | None:
    """Repeated and comma-separated ``--optimizer``/``--schedule`` values as one list (None: all)."""
    if not values:
        return None
    names = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return names or None


# --- basin best ---------------------------------------------------------------------------------


@pipe_safe
def run_best(args: argparse.Namespace) -> int:
    """``basin best``: the best settings, or the --by budget / --coupling / --headline views."""
    import storage

    prog = "basin best"
    if not args.coupling and args.tol is not None:
        return fail(prog, "--tol applies to --coupling only; add --coupling or drop it")
    try:
        rdb = storage.open_storage(args.storage, read_only=True)
        optimizer, schedule = _split_names(args.optimizer), _split_names(args.schedule)
        boot = args.boot
        if args.coupling:
            results = storage.coupling(rdb, args.sweep, optimizer, schedule,
                                       tol=DEFAULT_TOL if args.tol is None else args.tol, n_boot=boot)
            return _emit_coupling(results, args)
        if args.by == "budget":
            return _emit_by_budget(storage.best_by_budget(rdb, args.sweep, optimizer, schedule, n_boot=boot), args)
        if args.headline:
            return _emit_headline(storage.headline(rdb, args.sweep, schedule, n_boot=boot), args)
        return _emit_best(*storage.best_and_headline(rdb, args.sweep, optimizer, schedule, n_boot=boot), args)
    except storage.EmptyStorageError as exc:
        return fail(prog, str(exc), EXIT_EMPTY)
    except (storage.StorageError, ValueError) as exc:
        return fail(prog, str(exc))


def _print_json(records: list[dict]) -> None:
    print(json.dumps(records, indent=2, allow_nan=False))


def _print_csv(frame: pd.DataFrame) -> None:
    frame.to_csv(sys.stdout, index=False, lineterminator="\n")


def _isna(x) -> bool:
    import pandas as pd  # already loaded: the numbers come from the answers' frames

    return x is None or pd.isna(x)


def _pct(x) -> str:
    return "-" if _isna(x) else f"{100 * x:.2f}"


def _g(x) -> str:
    return "-" if _isna(x) else f"{x:.3g}"


def _interval(lo, hi, scale: float = 100.0, fmt: str = ".2f") -> str:
    if _isna(lo) or _isna(hi):
        return "-"
    return f"[{scale * lo:{fmt}}, {scale * hi:{fmt}}]"


def _render(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


NO_TRIALS = "no COMPLETE trial yet in the selected studies"
LEVEL = "95%"
SELECTION = {
    "validation": "selected on the validation split, reported on the test set",
    "cross_fit": "cross-fitted: selected on the other seeds, reported on each held-out seed",
    "naive": "naive: selected and reported on the same test errors (biased low; add seeds or a validation split)",
}


def _emit_machine(args, table: pd.DataFrame, rows: list | None = None) -> bool:
    """Print ``table`` for scripts when --json (``rows`` if given) or --csv asks; True if printed."""
    if args.json:
        _print_json(records(table) if rows is None else rows)
    elif args.csv:
        _print_csv(table)
    return bool(args.json or args.csv)


def _emit_best(table: pd.DataFrame, heads: pd.DataFrame | None, args) -> int:
    if _emit_machine(args, table):
        return EXIT_OK
    if table.empty:
        print(NO_TRIALS)
        return EXIT_OK
    header = ["sweep", "optimizer", "schedule", "T", "α", "λ_norm", "λ", "test err %", f"{LEVEL} interval",
              "P(best)", "plausible", "seeds", "complete", "failed", "diverged"]
    rows = [[r.sweep, r.optimizer, r.schedule, str(r.budget), _g(r.lr), _g(r.wd_norm), _g(r.wd),
             _pct(r.error), _interval(r.error_lo, r.error_hi), f"{r.p_best:.2f}", str(r.n_plausible), str(r.n_seeds),
             str(r.n_complete), str(r.n_failed), str(r.n_diverged)] for r in table.itertuples()]
    print(_render(rows, header))
    print()
    for method in dict.fromkeys(table["selection"]):
        print(f"test err: {SELECTION[method]}")
    for sources in dict.fromkeys(table["sources"]):
        print(f"intervals: {LEVEL}, bootstrap over {sources}; P(best): share of draws in which the cell is the best; "
              "plausible: cells not distinguishably worse than the best")
    notes = [(r, n) for r in table.itertuples() for n in _best_notes(r)]
    if notes:
        print()
        for r, note in notes:
            print(f"note {r.sweep}/{r.optimizer}/{r.schedule} T={r.budget}: {note}")
    if heads is not None and not heads.empty:
        print()
        _print_headline_text(heads)
    return EXIT_OK


def _best_notes(r) -> list[str]:
    notes = []
    if r.border:
        notes.append(r.border)
    if r.n_tied > 1:
        notes.append(f"{r.n_tied} cells tie at the best mean; shown: most seeds, then smallest α, then smallest λ_norm")
    return notes


def _emit_headline(heads: pd.DataFrame, args) -> int:
    if _emit_machine(args, heads):
        return EXIT_OK
    if heads.empty:
        print("no headline: needs both members of a pair (adamw and adam, or sgdw and sgd) "
              "in the same sweep, schedule and budget")
    else:
        _print_headline_text(heads)
    return EXIT_OK


def _print_headline_text(heads: pd.DataFrame) -> None:
    for h in heads.itertuples():
        paper = " (paper: ≈15% on CIFAR-10 and ImageNet32x32)" if h.decoupled == "adamw" else ""
        if _isna(h.improvement):
            print(f"{h.decoupled} vs {h.coupled} ({h.sweep}, {h.schedule}, T={h.budget}): no improvement to report")
            continue
        lo, hi = h.improvement_lo, h.improvement_hi
        verdict = {"better": "better with decoupled decay", "worse": "worse with decoupled decay"}.get(
            h.verdict, "not distinguishable at this noise")
        print(f"{h.decoupled} vs {h.coupled} ({h.sweep}, {h.schedule}, T={h.budget}): test error "
              f"{_pct(h.decoupled_error)}% vs {_pct(h.coupled_error)}%, relative improvement "
              f"{100 * h.improvement:+.1f}% {LEVEL} {_interval(lo, hi, fmt='+.1f')}: {verdict}{paper}; "
              f"{'paired over seeds, ' if h.paired else ''}{h.selection}, noise: {h.sources}")


def _emit_by_budget(table: pd.DataFrame, args) -> int:
    if _emit_machine(args, table):
        return EXIT_OK
    if table.empty:
        print(NO_TRIALS)
        return EXIT_OK
    first = True
    for (sweep, optimizer, schedule), group in table.groupby(["sweep", "optimizer", "schedule"], sort=True):
        if not first:
            print()
        first = False
        print(f"{sweep}/{optimizer}/{schedule}")
        header = ["T", "λ_norm*", f"{LEVEL} interval", "raw λ*", f"{LEVEL} interval", "best α", "test err %",
                  "train err %", "seeds"]
        rows = [[str(r.budget), _g(r.lambda_norm_star), _interval(r.lambda_norm_lo, r.lambda_norm_hi, 1.0, ".3g"),
                 _g(r.raw_star), _interval(r.raw_lo, r.raw_hi, 1.0, ".3g"), _g(r.lr), _pct(r.error),
                 _pct(r.train_error), str(r.n_seeds)] for r in group.itertuples()]
        print(_render(rows, header))
        g = group.iloc[0]
        if g["n_budgets"] < 2 or _isna(g["k"]):
            print("  no exponent: " + (g["budget_notes"] or "one budget only: no trend against T"))
        else:
            print(f"  λ_norm* ∝ T^{g['k']:+.2f} {_interval(g['k_lo'], g['k_hi'], 1.0, '+.2f')}, raw λ* ∝ "
                  f"T^{g['raw_exponent']:+.2f} {_interval(g['raw_exponent_lo'], g['raw_exponent_hi'], 1.0, '+.2f')}"
                  f" ({LEVEL}): {g['verdict']}")
            print(f"  from one joint fit over every budget's (T, λ_norm) profile: the {g['k_source']}"
                  + (" of the quadratic surface" if g["k_source"] == "valley" else
                     " (the largest λ_norm still near each budget's best)"))
            print("  predictions for λ_norm* ∝ T^k: k = 0 the paper's √ rule (sqrt_rule); k = −½ a decay "
                  "timescale τ = 1/(η_t·λ) a fixed fraction of the run (tau_fraction); k = +½ τ fixed in epochs "
                  "(tau_epochs, Wang & Aitchison 2024)")
            if g["budget_notes"]:
                print(f"  note: {g['budget_notes']}")
        high = group[~group["fits"].astype(bool)]
        if len(high):
            print(f"  note: final train error above {100 * FIT_TRAIN_ERROR:g}% at T = {', '.join(map(str, high['budget']))}: "
                  "those runs do not fit their training data (Appendix B.1's claim is about runs that do)")
        for r in group.itertuples():
            if r.border:
                print(f"  note T={r.budget}: {r.border}")
    return EXIT_OK


def _emit_coupling(results, args) -> int:
    import storage

    if _emit_machine(args, storage.coupling_frame(results),
                     [jsonable(c.to_dict()) for c in results]):
        return EXIT_OK
    if not results:
        print(NO_TRIALS)
        return EXIT_OK
    for i, c in enumerate(results):
        if i:
            print()
        rests = f" (rests on {' + '.join(c.rests_on)})" if c.rests_on else ""
        print(f"{c.sweep}/{c.optimizer}/{c.schedule} T={c.budget}: {c.verdict}{rests}")
        if c.best_error is not None:
            print(f"  best cell     α={_g(c.best_lr)} λ_norm={_g(c.best_wd_norm)} test err {_pct(c.best_error)}%")
        what = {"λ*": f"λ_norm*(α) of the {c.n_argmin_rows} basin rows where λ_norm matters",
                "edge": f"largest λ_norm within {c.tol:g} of each row's best, {c.n_alpha} α rows locate it",
                "valley": f"−H_uv/H_vv of the quadratic surface over {c.n_fit_cells} cells"}
        for est, value, ci, verdict in c.estimates():
            name = f"{est} slope"
            interval = f" {_interval(*ci, 1.0)} {LEVEL}" if ci else ""
            print(f"  {name:13s} {value:+.2f}{interval} → {verdict} ({what[est]})")
        if c.estimates():
            print(f"  noise: {' + '.join(c.sources) or 'none'}; coupled: within 0.25 of −1 and not of 0, "
                  "decoupled: the reverse")
        if c.axis_angle is not None:
            print(f"  top-10 axis   {c.axis_angle:.0f}° in (log α, log λ_norm), elongation {c.axis_elongation:.2f} "
                  "(coupled ≈ −45°, decoupled ≈ 0° or 90°)")
        for note in c.notes:
            print(f"  note: {note}")
    return EXIT_OK
