"""What every ``basin`` command shares, for ``study/commands/*`` and ``dashboards/cli.py`` alike: the exit
codes, the one-line failure, ``--storage``/``--sweep``, the argument types, the parser whose bad input is one
line, and quiet ends of a closed pipe. It lives in storage because both study and dashboards may import
storage (and dashboards may import nothing else of Basin's).

Light on purpose (argparse, the standard library and ``storage.errors`` only): ``basin --help`` imports it.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from collections.abc import Callable

from storage.errors import one_line

EXIT_OK, EXIT_EMPTY, EXIT_USAGE = 0, 1, 2

STORAGE_HELP = "storage URL (default: $BASIN_STORAGE, else sqlite:///basin.db); opened read-only"


class CommandParser(argparse.ArgumentParser):
    """A ``basin`` subcommand's parser (``add_subparsers(parser_class=CommandParser)``).

    Bad input is one line, ``basin best: error: … (see basin best --help)``, and exit 2, not argparse's whole
    usage. Options whose choices or defaults need heavy imports (``basin train``'s come from torch code) can be
    added on first use with :func:`add_later`: when the command is parsed or its help is shown, not when
    ``basin --help`` lists the commands.
    """

    _later: Callable[[argparse.ArgumentParser], None] | None = None

    def _add_pending(self) -> None:
        add, self._later = self._later, None
        if add is not None:
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_pending()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_pending()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_pending()
        return super().format_help()

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_later(parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser], None]) -> None:
    """Call ``add(parser)`` when ``parser`` is first used (a :class:`CommandParser`), else now."""
    if isinstance(parser, CommandParser):
        parser._later = add
    else:
        add(parser)


def storage_args(parser: argparse.ArgumentParser, *, sweep: str | None = "only this sweep") -> None:
    """``--storage URL`` (opened read-only) and, unless ``sweep`` is None, ``--sweep NAME`` with that help."""
    parser.add_argument("--storage", metavar="URL", default=None, help=STORAGE_HELP)
    if sweep is not None:
        parser.add_argument("--sweep", metavar="NAME", default=None, help=sweep)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number ≥ 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}")
    return value


def fail(prog: str, message: object, code: int = EXIT_USAGE) -> int:
    """Print ``prog: message`` as one line on stderr; return the exit code (2, bad input, unless told)."""
    print(f"{prog}: {one_line(message)}", file=sys.stderr)
    return code


def pipe_safe(fn):
    """A reader that stops early (``| head``) ends the output quietly instead of with a traceback."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            code = fn(args)
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK

    return wrapper
