"""``basin dashboard`` and ``basin report``, plugged into the ``basin`` CLI.

pyproject.toml's ``[project.entry-points."basin.commands"]`` names this module; ``basin`` calls
:func:`register` with its subparsers. Heavy imports (Dash, Plotly, pandas) happen only when a
command runs, so ``basin --help`` stays fast.

``basin dashboard [--storage URL] [--host 127.0.0.1] [--port 8050] [--verbose]``
    Serve the dashboard and its JSON API with Werkzeug's threaded server, for one person on
    this machine by default (127.0.0.1). For a shared server use gunicorn with
    ``dashboards.wsgi:application`` (see docs/dashboard.md). ``--port 0`` picks a free port;
    the first line printed says which.
``basin report [--storage URL] [--sweep NAME] --out report.html``
    Write the self-contained offline report.

Bad input prints one line on stderr and exits 2, before anything is served or written. A
storage that can never hold a sweep is bad input: a folder, a path in a missing folder, a file
that is not a database, a server that refuses the connection, a string that is no URL
(``storage.open_storage`` raises ``StorageError``, naming the URL as it was typed). Only a storage
that a sweep can still fill — a database file not created yet in an existing folder, a database
without Basin's tables — counts as "nothing recorded yet": the report exits 1, the dashboard
says so on stderr and starts anyway, showing sweeps as they are recorded.
"""

from __future__ import annotations

import argparse
import logging
import sys

import storage

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers) -> None:
    dash = subparsers.add_parser(
        "dashboard",
        help="serve the dashboard (Sweeps, Basins, Schedules, Learning curves, Budgets, Anytime) and its JSON API",
        description="Serve the Dash dashboard and its JSON API (/api/sweeps, /api/basin, /api/best) for a storage, "
                    "read-only. Listens on 127.0.0.1 unless --host says otherwise.",
    )
    storage.storage_args(dash, sweep=None)
    dash.add_argument("--host", default="127.0.0.1",
                      help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to "
                           "the network)")
    dash.add_argument("--port", type=_port, default=8050, help="TCP port (default 8050; 0 picks a free one)")
    dash.add_argument("--verbose", action="store_true", help="log every HTTP request")
    dash.set_defaults(func=run_dashboard)

    report = subparsers.add_parser(
        "report",
        help="write one self-contained HTML report (figures and basin best's numbers; opens offline)",
        description="Write one self-contained HTML file with the dashboard's figures and the numbers of basin best "
                    "(best settings, coupling, AdamW vs Adam). Plotly's JavaScript is embedded: it opens offline.",
    )
    storage.storage_args(report, sweep="only this sweep (default: every sweep)")
    report.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write (replaced atomically)")
    report.set_defaults(func=run_report)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0–65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0–65535, got {text!r}")
    return value


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def run_dashboard(args: argparse.Namespace) -> int:
    prog = "basin dashboard"
    if not args.host.strip():
        return storage.fail(prog, "--host is empty; use 127.0.0.1 (this machine) or 0.0.0.0 (every interface)")
    from werkzeug.serving import make_server

    from dashboards.app import create_app
    from dashboards.data import Source

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    source = Source(args.storage)
    try:
        empty = source.check()
    except storage.StorageError as exc:
        return storage.fail(prog, str(exc))
    if empty:
        print(f"{prog}: {empty} — serving anyway; sweeps appear as they are recorded", file=sys.stderr)
    app = create_app(source=source)
    try:
        server = make_server(args.host, args.port, app.server, threaded=True)
    except (OSError, OverflowError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return storage.fail(prog, f"cannot listen on {args.host}:{args.port}: {reason}")
    print(f"Basin dashboard on http://{_url_host(args.host)}:{server.server_port}/ — storage {source.label} "
          "(read-only); Ctrl-C to stop", flush=True)
    if args.host not in LOOPBACK:
        print(f"{prog}: listening on {args.host}: anyone who can reach this machine can read these results",
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return storage.EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    prog = "basin report"
    from dashboards import report
    from dashboards.data import Source

    try:
        path, n = report.write(Source(args.storage), args.out, sweep=args.sweep)
    except storage.EmptyStorageError as exc:
        return storage.fail(prog, str(exc), storage.EXIT_EMPTY)
    except (storage.StorageError, ValueError, OSError) as exc:
        return storage.fail(prog, str(exc))
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({n} figures, {size:.1f} MB; opens offline)")
    return storage.EXIT_OK
