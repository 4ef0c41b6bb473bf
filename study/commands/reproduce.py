"""``basin reproduce``: check the paper's claims with Basin's own sweeps and print a verdict table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from storage.cli_kit import EXIT_OK, fail, positive_int
from storage.constants import DEFAULT_BOOT

PRESETS = Path(__file__).resolve().parents[2] / "examples" / "reproduce"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="check the paper's four claims (Figure 2, AdamW vs Adam, Appendix B.1, Figure 4) with verdicts",
        description="Run what is missing of a preset's sweeps (resumable) and print, per claim, the paper's "
                    "number, Basin's estimate with its 95%% interval and a verdict that follows the interval.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="preset",
                      help="MNIST-1D, 3 seeds, packed: sized for a 2-core laptop (the default)")
    size.add_argument("--full", action="store_const", const="full", dest="preset",
                      help="CIFAR-10 / Shake-Shake 26 2x64d, 3 seeds: for a GPU cluster (--address)")
    size.add_argument("--preset", dest="preset", metavar="FILE", help="a preset file naming figure2, budgets, restarts")
    p.add_argument("--storage", default=None,
                   help="SQLAlchemy URL of the Optuna database (default: $BASIN_STORAGE or sqlite:///basin.db)")
    p.add_argument("--no-run", action="store_true", help="run nothing: read what is recorded")
    p.add_argument("--address", default=None, help="Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--pack", default=None, help="override the specs' pack (auto or N)")
    p.add_argument("--until-decided", action="store_true",
                   help="run every preset sweep adaptively: the first seed on every cell, then every seed only "
                        "where the doubt is, until each verdict is decided (specs with an [adaptive] table "
                        "always run so)")
    p.add_argument("--boot", type=positive_int, default=DEFAULT_BOOT, metavar="N", help=f"bootstrap draws (default {DEFAULT_BOOT})")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    out.add_argument("--markdown", action="store_true", help="print the verdict table as Markdown")
    p.add_argument("--quiet", action="store_true", help="no progress while sweeps run")
    p.set_defaults(func=run, preset=None)


def preset_path(name: str | None) -> Path:
    if name in (None, "quick", "full"):
        return PRESETS / f"{name or 'quick'}.toml"
    return Path(name)


def run(args: argparse.Namespace) -> int:
    import storage
    from study import reproduce
    from study.spec import SpecError

    prog = "basin reproduce"
    try:
        preset = reproduce.load_preset(preset_path(args.preset))
    except SpecError as exc:
        return fail(prog, f"error: {exc}")
    url = args.storage or storage.default_url()
    try:
        if not args.no_run:
            _run_sweeps(preset, url, args)
        rdb = storage.open_storage(url, read_only=True)
        claims = reproduce.evaluate(rdb, preset, args.boot)
    except (SpecError, storage.StorageError) as exc:
        return fail(prog, f"error: {exc}")
    if args.json:
        print(json.dumps(reproduce.to_records(claims), indent=2))
    elif args.markdown:
        print(reproduce.to_markdown(claims, preset))
    else:
        for c in claims:
            print(f"{c.verdict.upper():15s} {c.claim}\n                paper:    {c.paper}\n"
                  f"                Basin:    {c.estimate}\n                rests on: {c.rests_on}"
                  + (f"\n                notes:    {c.notes}" if c.notes else ""))
        print(f"\n{preset.name}: {reproduce.summary(claims)} (95% intervals over the test set and seeds)")
    return EXIT_OK


def _run_sweeps(preset, url: str, args) -> None:
    """Run each preset sweep's missing points on one Ray session (resumable: done points are skipped)."""
    import ray

    from study.adaptive import run_adaptive
    from study.commands.sweep import _pack
    from study.driver import connect_ray, run_sweep

    pack = None if args.pack is None else _pack(args.pack)
    started = not ray.is_initialized()
    connect_ray(args.address, verbose=False)
    try:
        for key, (spec, text) in preset.specs.items():
            if (spec.adaptive is not None or args.until_decided) and len(spec.seeds) >= 2:
                ad = run_adaptive(spec, text, storage_url=url, quiet=args.quiet, pack=pack,
                                  log=lambda line, key=key: print(f"{key}: {line}", file=sys.stderr))
                print(f"{key}: sweep {spec.name} (adaptive): ran {ad.counts.get('run', 0)} points in "
                      f"{len(ad.rounds)} rounds; stopped: {ad.stopped}", file=sys.stderr)
                continue
            summary = run_sweep(spec, text, storage_url=url, quiet=args.quiet, pack=pack)
            print(f"{key}: sweep {spec.name}: ran {summary['run']} points "
                  f"({summary['already_complete']} already complete)", file=sys.stderr)
    finally:
        if started:
            ray.shutdown()
