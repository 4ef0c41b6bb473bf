"""Names and references of models, data sets and metric functions: the one resolver of user code.

A spec, ``RunConfig`` or ``basin train`` names a model or data set in one of two ways:

* a **name** — ``"cnn"``, ``"digits"``, ``"resnet-tiny"`` — an entry point of the group
  :data:`GROUPS` ``[kind]`` (``basin.models``, ``basin.datasets``) of an installed distribution.
  Basin registers its own built-ins in its pyproject.toml exactly so; any installed package
  registers more the same way (``[project.entry-points."basin.models"] resnet-tiny = "pkg.mod:fn"``).
  Names never contain ``:``.
* a **reference** — ``"package.module:function"`` (a dotted attribute after the colon is allowed,
  ``"pkg.mod:Class.build"``) — imported where it is used, from the installed packages, the
  ``PYTHONPATH`` and the folders given with ``code = "DIR"`` / ``--code DIR`` (:func:`add_code`).

:func:`check` validates the form of a value without importing anything (what ``RunConfig`` and the
spec do); :func:`resolve` imports and returns the callable. Every failure is a
:class:`RegistryError`: one line naming the field, the problem, and the fix — for a name, what is
registered. What the callables must accept and return (the contract) is stated where they are
called: ``trainers.models.build``, ``trainers.data.load``, ``trainers.metrics``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

GROUPS = {"model": "basin.models", "dataset": "basin.datasets"}
_WORDS = {"model": "model", "dataset": "data set"}
_IDENT = r"[A-Za-z_]\w*"
REFERENCE = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$")
CODE_FIX = 'install its package, or ship its folder with code = "DIR" in the spec (--code DIR on the command line)'


class RegistryError(ValueError):
    """A name or reference that cannot be used: one line, ``"<field>: <problem>; <fix>"``."""


def is_reference(value: str) -> bool:
    """``"package.module:function"`` (as opposed to a registered name)."""
    return isinstance(value, str) and ":" in value


@functools.lru_cache(maxsize=64)
def _entry_points(group: str, _path: tuple[str, ...]) -> dict:
    """{name: EntryPoint} of ``group``, cached per sys.path (a folder added later is seen)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def _registered(kind: str) -> dict:
    return _entry_points(GROUPS[kind], tuple(sys.path))


def names(kind: str) -> list[str]:
    """The registered names of ``kind``: Basin's built-ins first, in the order the README lists
    them, then the others sorted."""
    from trainers import data, models

    builtin = {"model": models.MODELS, "dataset": data.DATASETS}[kind]
    order = {name: i for i, name in enumerate(builtin)}
    return sorted(_registered(kind), key=lambda n: (order.get(n, len(order)), n))


def _listing(kind: str) -> str:
    have = names(kind)
    if not have:
        return (f"no {_WORDS[kind]} is registered (entry points {GROUPS[kind]}): is basin-landscape installed? "
                "(pip install -e . in the checkout)")
    return f"registered ({GROUPS[kind]}): {', '.join(have)}; or a reference 'package.module:function'"


def check(kind: str, value, field: str | None = None) -> str:
    """``value`` if it is a registered name or a well-formed reference (nothing is imported)."""
    field = field or kind
    if not isinstance(value, str) or not value:
        raise RegistryError(f"{field}: must be a name or 'package.module:function'; got {value!r}")
    if is_reference(value):
        if not REFERENCE.match(value):
            raise RegistryError(f"{field}: {value!r} is not a reference 'package.module:function' "
                                "(dotted Python names either side of one colon)")
        return value
    if value not in _registered(kind):
        raise RegistryError(f"{field}: unknown {_WORDS[kind]} {value!r}; {_listing(kind)}")
    return value


def resolve(kind: str, value: str, field: str | None = None) -> Callable:
    """The callable ``value`` names (a registered name or a reference), imported now. ``kind`` is
    one of :data:`GROUPS`, or any other word (``"metric"``) for a field that takes references only."""
    field = field or kind
    if kind in GROUPS:
        check(kind, value, field)
    else:  # metric functions: references only
        check_reference(value, field)
    if not is_reference(value):
        ep = _registered(kind)[value]
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in: say which, not a traceback
            raise RegistryError(f"{field}: the entry point {value!r} = {ep.value!r} ({GROUPS[kind]}) does not load: "
                                f"{_one_line(exc)}; fix or uninstall the package that registers it") from None
        return _callable(obj, field, f"{value!r} ({ep.value})")
    return _callable(import_reference(value, field), field, repr(value))


def check_reference(value, field: str) -> str:
    """``value`` if it is a well-formed reference (for fields that take only references)."""
    if not isinstance(value, str) or not REFERENCE.match(value):
        raise RegistryError(f"{field}: {value!r} is not a reference 'package.module:function'")
    return value


def import_reference(value: str, field: str):
    """The object ``"package.module:attr.attr"`` names."""
    module_name, _, attrs = value.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            hint = ""
            top = module_name.split(".")[0]
            if (Path.cwd() / top).is_dir() or (Path.cwd() / f"{top}.py").is_file():
                hint = " (it is in the current folder: add --code . or code = \".\")"
            raise RegistryError(f"{field}: cannot import module {module_name!r} (from {value!r}): "
                                f"no module named {exc.name!r}{hint}; {CODE_FIX}") from None
        raise RegistryError(f"{field}: importing {module_name!r} (from {value!r}) failed: {_one_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise RegistryError(f"{field}: importing {module_name!r} (from {value!r}) failed: {_one_line(exc)}") from None
    for i, attr in enumerate(attrs.split(".")):
        if not hasattr(obj, attr):
            where = module_name if i == 0 else f"{module_name}:{'.'.join(attrs.split('.')[:i])}"
            have = [n for n, v in vars(obj).items() if callable(v) and not n.startswith("_")
                    and (not inspect.ismodule(obj) or getattr(v, "__module__", None) == obj.__name__)]
            listed = f"; it defines {', '.join(sorted(have)[:12])}" if have else ""
            raise RegistryError(f"{field}: {where!r} has no attribute {attr!r} (from {value!r}){listed}") from None
        obj = getattr(obj, attr)
    return obj


def _callable(obj, field: str, what: str) -> Callable:
    if not callable(obj):
        raise RegistryError(f"{field}: {what} is a {type(obj).__name__}, not a function")
    return obj


def call_with_accepted(fn: Callable, **kwargs):
    """``fn(**kwargs)`` with only the keyword arguments its signature names (all, given ``**kw``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pass everything
        return fn(**kwargs)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return fn(**kwargs)
    accepted = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return fn(**{k: v for k, v in kwargs.items() if k in accepted})


def add_code(folder: str | Path, field: str = "code") -> Path:
    """Put ``folder`` (the user's code) first on this process's import path; returns it absolute.

    The sweep driver ships the same folder to Ray's workers (``runtime_env`` ``working_dir``), so
    driver and workers import the same modules.
    """
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise RegistryError(f"{field}: {str(folder)!r} is not a folder; give the folder holding your package or module")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    importlib.invalidate_caches()
    return path


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no detail"
    text = text[:300] + ("…" if len(text) > 300 else "")
    return f"{type(exc).__name__}: {text}"


__all__ = ["GROUPS", "REFERENCE", "RegistryError", "add_code", "call_with_accepted", "check", "check_reference",
           "import_reference", "is_reference", "names", "resolve"]
