"""The ``basin`` command line.

Each module in ``study/commands/`` exposes ``register(subparsers)``, which adds one or more
parsers and sets ``func`` on them. Other packages (the dashboard) plug in through the
``basin.commands`` entry-point group in pyproject.toml, which keeps the import direction of the
packages: study never imports dashboards; the dashboard registers its own commands.

Building the parser is cheap (``basin --help`` imports no torch, Ray, pandas, Dash or Optuna): command
modules import what they need inside the function that runs the command, read light constants
(``storage.constants``), and a command whose options need heavy imports adds them on first use
(``storage.cli_kit.add_later``). Every subcommand's parser is a ``storage.cli_kit.CommandParser``: bad
input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from importlib.metadata import entry_points

from storage.cli_kit import CommandParser
from study import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="basin",
        description="Hyperparameter-landscape studies of L2 vs decoupled weight decay (Loshchilov & Hutter, 2019).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"study.commands.{info.name}").register(subparsers)
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
