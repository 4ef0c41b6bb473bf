"""Answers kept between requests, keyed by everything they are computed from.

A read answer — ``storage.best``, ``best_and_headline``, ``headline``, ``coupling``, ``best_by_budget``,
``anytime`` (what ``basin best`` and ``basin reproduce`` print), ``figure2_panels`` (the Basins page),
``budget_view`` (the Budgets page) — is a pure function of the storage's Basin studies (their
attrs), their trials, the call's arguments and Basin's code: the bootstrap is drawn from a fixed seed
(``storage.panel.RNG_SEED``). Trials are written once: Basin records a trial whole, in one transaction
(:mod:`storage.record`), and Optuna refuses to change a finished trial. So everything an answer reads
from a study's trials changes the study's *fingerprint* (:func:`storage.sql.trial_fingerprint`: trial
count, largest trial id, first start, last completion, counts per state).

The key of an answer is a SHA-256 of: the function and its arguments, the storage URL, the studies
frame (every Basin study's attrs), the fingerprint of the studies the call's ``sweep`` selects (all
studies without one), the source of the ``storage`` package and the versions of Python, NumPy, pandas,
SciPy, Optuna and SQLAlchemy. A hit costs the studies frame, one aggregate query and an unpickle (≈ 0.1 s at
100,000 trials, docs/benchmarks.md); a miss computes the answer and stores it.

Where: ``$BASIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/basin/answers``, else ``~/.cache/basin/answers``
(made with mode 0700: the files are pickles, and a pickle is only loaded from a folder that is yours).
``BASIN_CACHE=off`` (or 0, false, no) turns it off. At most :data:`MAX_FILES` answers and
:data:`MAX_BYTES` are kept, the least recently used removed first. A folder that cannot be written, or
a file that cannot be read back, costs the speed only: the answer is computed as if there were no cache.
The database itself is never written (dashboards stay read-only); editing Optuna's tables by hand,
outside Optuna and Basin, is the one change a fingerprint can miss — ``BASIN_CACHE=off`` then.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import os
import pickle
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: Answers kept at most (least recently used removed first) …
MAX_FILES = 256
#: … and bytes at most.
MAX_BYTES = 256 * 2**20
_OFF = {"0", "off", "false", "no"}


def cache_dir() -> Path | None:
    """The folder answers are kept in, or None when ``BASIN_CACHE`` turns the cache off."""
    if os.environ.get("BASIN_CACHE", "").strip().lower() in _OFF:
        return None
    if os.environ.get("BASIN_CACHE_DIR"):
        return Path(os.environ["BASIN_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "basin" / "answers"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of the ``storage`` package's source and the versions of what computes the answers."""
    from importlib.metadata import version  # not `import scipy`: 0.2 s that a served answer never needs

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    versions = (sys.version, *(version(name) for name in ("numpy", "pandas", "scipy", "optuna", "SQLAlchemy")))
    digest.update(repr(versions).encode())
    return digest.hexdigest()


def request_key(rdb, name: str, arguments: dict) -> str:
    """The key of ``name``(``arguments``) on ``rdb`` as it stands now (module doc)."""
    from storage.frames import studies_frame
    from storage.sql import trial_fingerprint

    meta = studies_frame(rdb)
    sweep = arguments.get("sweep")
    chosen = meta if sweep is None else meta[meta["sweep"] == sweep]
    parts = (name, sorted((k, repr(v)) for k, v in arguments.items()), str(rdb.url), code_version(),
             meta.to_json(orient="split", default_handler=repr), trial_fingerprint(rdb.engine, chosen["study_id"]))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _load(path: Path):
    try:
        with open(path, "rb") as fh:
            value = pickle.load(fh)
        os.utime(path)  # recently used
        return value
    except (FileNotFoundError, NotADirectoryError):
        return _MISS
    except Exception as exc:  # noqa: BLE001 - a bad file costs the speed only: compute again
        log.debug("answer cache: %s unreadable (%s); computing", path, exc)
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
        return _MISS


def _store(folder: Path, path: Path, value) -> None:
    from storage.files import write_atomic

    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_BYTES:
            return
        write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))
        _prune(folder)
    except OSError as exc:  # a read-only home, a full disk: the answer stands without its copy
        log.debug("answer cache: not kept in %s (%s)", folder, exc)


def _prune(folder: Path) -> None:
    """Remove the least recently used answers beyond :data:`MAX_FILES` / :data:`MAX_BYTES`."""
    files = []
    for path in folder.glob("*.pkl"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        files.append((st.st_mtime, st.st_size, path))
    files.sort(reverse=True)
    total = 0
    for i, (_, size, path) in enumerate(files):
        total += size
        if i >= MAX_FILES or total > MAX_BYTES:
            path.unlink(missing_ok=True)


_MISS = object()


def remembered(fn):
    """Keep ``fn``'s answers (a read function whose first argument is the storage) under their key."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(storage, *args, **kwargs):
        from storage.connect import reader

        folder = cache_dir()
        if folder is None:
            return fn(storage, *args, **kwargs)
        rdb = reader(storage)
        bound = signature.bind(rdb, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(list(bound.arguments.items())[1:])
        path = folder / f"{request_key(rdb, f'{fn.__module__}.{fn.__qualname__}', arguments)}.pkl"
        value = _load(path)
        if value is _MISS:
            value = fn(rdb, *args, **kwargs)
            _store(folder, path, value)
        return value

    return wrapper


__all__ = ["MAX_BYTES", "MAX_FILES", "cache_dir", "code_version", "remembered", "request_key"]
