"""Where an adaptive sweep runs next: the cells in doubt of every panel of a sweep, read from the database.

A view over the panel-data step (:mod:`storage.panel`): one read, every panel's answers with its
coupling, then :func:`storage.evidence.doubt.doubt_cells` on each — the plausible optima and, per basin
row, the λ_norm* window and the edge's cells. ``study.adaptive`` turns the cells into grid points
(every seed of the spec) and runs the ones not yet recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from storage import panel as panel_step
from storage.connect import StorageLike, reader
from storage.constants import DEFAULT_BOOT, DEFAULT_TOL
from storage.errors import read_errors
from storage.evidence import doubt as rule
from storage.evidence.doubt import DECIDED


@dataclass(frozen=True)
class Doubt:
    """``cells``: one row per cell in doubt (optimizer, schedule, budget, lr, wd_norm, n_seeds);
    ``verdicts``: each panel's coupling verdict {(optimizer, schedule, budget): verdict}."""

    cells: pd.DataFrame
    verdicts: dict[tuple[str, str, int], str]

    @property
    def decided(self) -> bool:
        """Every panel's coupling is decided (coupled or decoupled)."""
        return all(v in DECIDED for v in self.verdicts.values())


@read_errors
def in_doubt(storage: StorageLike, sweep: str, *, radius: int = rule.DEFAULT_RADIUS, n_boot: int = DEFAULT_BOOT,
          tol: float = DEFAULT_TOL) -> Doubt:
    """The cells in doubt of every panel of ``sweep`` (:mod:`storage.evidence.doubt`), with each panel's
    coupling verdict; ``radius`` the λ_norm* window's half-width in columns."""
    rdb = reader(storage)
    meta, eff, axes = panel_step.read(rdb, sweep)
    answers = panel_step.answers(rdb, meta, eff, n_boot=n_boot, coupling=True, tol=tol, axes=axes)
    by_study = meta.set_index("study")
    rows, verdicts = [], {}
    for (name, budget), ans in answers.items():
        m, P = by_study.loc[name], ans.panel
        key = (str(m["optimizer"]), str(m["schedule"]), int(budget))
        kw = {}
        if ans.coupling is not None:
            verdicts[key] = ans.coupling.verdict
            basin, e_lo, e_hi = rule.row_arrays(ans.coupling.rows, P.alphas)
            kw = dict(basin=basin, edge_lo=e_lo, edge_hi=e_hi)
        mask = rule.doubt_cells(P, ans.cells, radius=radius, **kw).reshape(P.shape)
        n_seeds = P.grid(P.n_seeds)
        for i, j in zip(*mask.nonzero()):
            rows.append({"optimizer": key[0], "schedule": key[1], "budget": key[2], "lr": float(P.alphas[i]),
                         "wd_norm": float(P.wd_norms[j]), "n_seeds": int(n_seeds[i, j])})
    cells = pd.DataFrame(rows, columns=["optimizer", "schedule", "budget", "lr", "wd_norm", "n_seeds"])
    return Doubt(cells, verdicts)


__all__ = ["DECIDED", "Doubt", "in_doubt"]
