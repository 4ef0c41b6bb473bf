"""``basin sweep SPEC.toml``: run (or resume) a whole grid on Ray Tune into an Optuna study."""

from __future__ import annotations

import argparse
import os

from storage.cli_kit import EXIT_OK, fail, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run or resume a sweep spec on Ray Tune, recording into an Optuna SQL study",
        description="Run every grid point of SPEC that has no COMPLETE trial in the database yet.",
    )
    p.add_argument("spec", help="the sweep spec (TOML)")
    p.add_argument("--storage", default=None,
                   help="SQLAlchemy URL of the Optuna database (default: $BASIN_STORAGE or sqlite:///basin.db)")
    p.add_argument("--address", default=None,
                   help="join an existing Ray cluster at HOST:PORT (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--dry-run", action="store_true", help="print the grid and the work it implies; run nothing")
    p.add_argument("--limit", type=positive_int, default=None, help="run at most N of the missing points (then stop)")
    p.add_argument("--pack", type=_pack, default=None, metavar="N|auto",
                   help="grid points trained together per Ray trial (default: the spec's pack, else auto; 1 = unpacked)")
    p.add_argument("--code", default=None, metavar="DIR",
                   help="folder of your model/data-set code, imported here and shipped to every Ray worker "
                        "(default: the spec's code)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--adaptive", action="store_true", default=None,
                      help="the first seed on every cell, then every seed only where the doubt is, in rounds "
                           "(the spec's [adaptive] table, else its defaults)")
    mode.add_argument("--full-grid", action="store_false", dest="adaptive",
                      help="every seed on every cell, even when the spec has an [adaptive] table")
    p.add_argument("--verbose", action="store_true", help="show Ray's and Tune's own output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _pack(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}")
    return value


def describe(spec, prepared, pack: int | str | None = None, adaptive: bool = False) -> str:
    points = spec.points()
    checked = prepared.checked
    lines = [f"sweep {spec.name}: {len(points)} grid points on {spec.dataset} with {spec.model} (batch {spec.batch_size})"]
    size = f"{checked.n_params:,} parameters, " if checked.n_params is not None else ""
    chance = "unknown here" if checked.chance is None else f"{checked.chance:.4g}"
    lines.append(f"  metric {spec.metric} (chance {chance}), decay {spec.decay}; {size}data set B = "
                 f"{checked.info.n_train}, n_test = {checked.info.n_test}, {checked.info.num_classes} classes"
                 + (f"; code {prepared.code} shipped to the workers" if prepared.code else ""))
    for opt_name in spec.optimizers:
        lrs, wds = spec.lr_values(opt_name), spec.wd_norm_values(opt_name)
        for sched in spec.schedules:
            lines.append(
                f"  study {spec.name}/{opt_name}/{sched.name}: {len(lrs)} α × {len(wds)} λ_norm × "
                f"{len(spec.budgets)} budgets × {len(spec.seeds)} seeds = {spec.study_grid_size(opt_name)} points "
                f"(α {lrs[0]:.3g}…{lrs[-1]:.3g}, λ_norm {wds[0]:.3g}…{wds[-1]:.3g})"
            )
    epochs = sum(p.budget for p in points)
    per_trial = f"{spec.resources.cpus:g} CPU" + (f", {spec.resources.gpus:g} GPU" if spec.resources.gpus else "")
    lines.append(f"  work: {epochs} training epochs in all; each trial takes {per_trial}; budgets {spec.budgets}")
    if adaptive:
        from study.adaptive import settings

        cfg = settings(spec)
        first = spec.first_points()
        lines.append(f"  adaptive: round 0 runs seed {spec.seeds[0]} on every cell ({len(first)} points); later rounds "
                     f"run seeds {spec.seeds[1:]} only on the cells in doubt (window ±{cfg.radius}…±{cfg.max_radius} "
                     f"columns, at most {cfg.max_runs or len(points)} runs in all)")
        points = first
    from study import packs

    pack = spec.pack if pack is None else pack
    slots = spec.max_concurrent_trials or max(1, int((os.cpu_count() or 1) // spec.resources.cpus))
    device = "auto" if spec.resources.gpus > 0 else "cpu"
    planned = packs.plan(spec, points, pack=pack, slots=slots, device=device, checked=checked)
    lines.append(packs.describe(planned, spec, pack, checked)
                 + f"; as if on this machine's {slots} trial slot(s) and with nothing recorded yet")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from study.preflight import prepare
    from study.spec import SpecError, load_spec

    prog = "basin sweep"
    try:
        spec, text = load_spec(args.spec)
    except SpecError as exc:
        return fail(prog, f"error: {exc}")
    try:  # the user's code checked before anything is written or started
        prepared = prepare(spec, args.code)
    except SpecError as exc:
        return fail(prog, f"error: {args.spec}: {exc}")
    adaptive = spec.adaptive is not None if args.adaptive is None else args.adaptive
    if adaptive and len(spec.seeds) < 2:
        return fail(prog, f"error: {args.spec}: seeds: --adaptive needs at least two seeds to add where the doubt is; "
                          "give seeds = [0, 1, 2]")
    if adaptive and args.limit is not None:
        return fail(prog, "error: --limit: an adaptive sweep chooses its own points; use [adaptive] max_runs instead")
    if args.dry_run:
        print(describe(spec, prepared, args.pack, adaptive))
        return EXIT_OK

    from storage.connect import default_url, safe_url
    from storage.errors import StorageError
    from study.driver import run_sweep
    from trainers.data import DataError

    url = args.storage or default_url()
    try:
        if adaptive:
            from study.adaptive import run_adaptive

            ad = run_adaptive(spec, text, storage_url=url, address=args.address, verbose=args.verbose,
                              quiet=args.quiet, pack=args.pack, prepared=prepared)
        else:
            summary = run_sweep(spec, text, storage_url=url, address=args.address, verbose=args.verbose,
                                quiet=args.quiet, limit=args.limit, pack=args.pack, prepared=prepared)
    except (SpecError, StorageError, DataError) as exc:  # a bad spec, a storage it cannot use, data it cannot load
        return fail(prog, f"error: {exc}")
    if adaptive:
        n = ad.counts
        print(f"sweep {spec.name} (adaptive): ran {n['run']} points in {len(ad.rounds)} rounds "
              f"({', '.join(str(r.run) for r in ad.rounds)}) and {n['packs']} packs, {n['failed']} failed, "
              f"{n['diverged']} diverged; stopped: {ad.stopped}; results in {safe_url(url)}")
        return EXIT_OK
    flight = (f"; {summary['in_flight']} points in flight in another driver were skipped"
              if summary["in_flight"] else "")
    if summary["run"] == 0:
        done = "all" if not summary["in_flight"] else f"{summary['already_complete']} of"
        print(f"sweep {spec.name}: {done} {summary['total']} points already complete in {safe_url(url)}{flight}; "
              "nothing to do")
        return EXIT_OK
    print(
        f"sweep {spec.name}: ran {summary['run']} points in {summary['packs']} packs "
        f"({summary['already_complete']} were already complete), {summary['failed']} failed, "
        f"{summary['diverged']} diverged{flight}; results in {safe_url(url)}"
    )
    return EXIT_OK
