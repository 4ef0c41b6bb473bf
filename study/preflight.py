"""Before a sweep starts, on the driver: the user's code made importable, checked, and readied for Ray.

:func:`prepare` runs before the database is opened and before Ray starts, so a sweep whose model,
data set or metric cannot run stops with one line naming the field (a :class:`SpecError`) and
writes nothing:

* the code folder — ``--code DIR``, else the spec's ``code`` — goes first on the driver's import
  path (``trainers.registry.add_code``) and, through :meth:`Prepared.runtime_env`, to every Ray
  worker as the job's ``runtime_env`` ``working_dir``: Ray uploads the folder once (honouring
  ``.gitignore``, without :data:`EXCLUDES`), every worker unpacks it and imports from it, so a
  worker without the user's package installed still imports it;
* ``trainers.check.check_run`` on the first grid point (CPU, one batch): the references import,
  the data set loads, one forward and backward pass runs. Its result — the data set's sizes, the
  chance level, the packed form — is what the driver records in the studies and plans packs with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from study.spec import SpecError, SweepSpec
from trainers.check import CheckError, Checked, check_run
from trainers.data import DataError
from trainers.registry import RegistryError, add_code
from trainers.run import RunConfig

#: Never uploaded with the code folder (on top of what its .gitignore excludes).
EXCLUDES = [".git", "**/__pycache__", "*.egg-info", ".venv", "*.db", "*.db-wal", "*.db-shm"]


@dataclass(frozen=True)
class Prepared:
    """A sweep ready to start: what the check found and the code folder (None: nothing to ship)."""

    checked: Checked
    code: Path | None = None

    def runtime_env(self) -> dict | None:
        """The Ray job's ``runtime_env``: the code folder as ``working_dir``, or None."""
        if self.code is None:
            return None
        return {"working_dir": str(self.code), "excludes": list(EXCLUDES)}


def prepare(spec: SweepSpec, code: str | Path | None = None) -> Prepared:
    """Make the user's code importable and check the sweep's first grid point (module docstring).
    ``code`` (``--code``) overrides the spec's ``code``. Raises SpecError, one line."""
    folder = code if code is not None else spec.code
    try:
        path = add_code(folder, "--code" if code is not None else "code") if folder is not None else None
        checked = check_run(RunConfig(**spec.run_config(spec.points()[0], device="cpu")))
    except (CheckError, RegistryError, DataError) as exc:  # DataError: e.g. an n_test the data set cannot give
        raise SpecError(str(exc)) from None
    return Prepared(checked, path)


__all__ = ["EXCLUDES", "Prepared", "prepare"]
