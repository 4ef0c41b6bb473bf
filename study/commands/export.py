"""``basin export``: every trial (per-epoch lists included) to one CSV or Parquet file, atomically.

Bad input prints one line on stderr naming the problem and the fix, and exits 2; a storage with
nothing recorded exits 1.
"""

from __future__ import annotations

import argparse

from storage.cli_kit import EXIT_EMPTY, EXIT_OK, fail, storage_args


def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export", help="write every trial (per-epoch lists included) to CSV or Parquet",
        description="Write every trial of the storage (or of --sweep) to one CSV or Parquet file, one row per "
                    "trial with the per-epoch lists; the file appears whole or not at all.",
    )
    storage_args(export)
    export.add_argument("--format", choices=["csv", "parquet"], default=None,
                        help="file format (default: from the --out suffix)")
    export.add_argument("--out", required=True, metavar="PATH", help="output file")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """``basin export``: every trial to one CSV or Parquet file, written atomically."""
    import storage
    from storage.exports import format_for

    prog = "basin export"
    try:
        fmt = format_for(args.out, args.format)
        rdb = storage.open_storage(args.storage, read_only=True)
        path = storage.export(rdb, args.out, fmt=fmt, sweep=args.sweep)
    except storage.EmptyStorageError as exc:
        return fail(prog, str(exc), EXIT_EMPTY)
    except (storage.StorageError, ValueError, OSError) as exc:
        return fail(prog, " ".join(str(exc).split()))
    print(f"wrote {path}")
    return EXIT_OK
