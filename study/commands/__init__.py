"""One module per `basin` subcommand; each exposes register(subparsers)."""
