"""`basin dashboard` and `basin report` (being written)."""


def register(subparsers) -> None:
    """Adds no command until the dashboard lands."""
