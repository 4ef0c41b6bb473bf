"""The ``basin`` command line.

Subcommands are plugged in through the ``basin.commands`` entry-point group (see pyproject.toml):
each entry point names a module with ``register(subparsers)``, which adds one or more parsers and
sets ``func`` on them. Discovery by entry point keeps the import direction of the packages
(study never imports dashboards; the dashboard registers its own commands).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="basin",
        description="Hyperparameter-landscape studies of L2 vs decoupled weight decay (Loshchilov & Hutter, 2019).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group="basin.commands"), key=lambda e: e.name):
        ep.load().register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("basin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
