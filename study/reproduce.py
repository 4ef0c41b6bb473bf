"""``basin reproduce``: the paper's claims checked by Basin itself, each with an estimate, its interval
and a verdict that follows the interval.

A *preset* is a small TOML file naming three sweep specs (paths relative to it): ``figure2`` (the
four optimizers' α × λ_norm grids), ``budgets`` (λ_norm across budgets T) and ``restarts`` (a plain
schedule against warm restarts). ``examples/reproduce/quick.toml`` runs on a 2-core laptop (MNIST-1D,
3 seeds, packed); ``examples/reproduce/full.toml`` is CIFAR-10 / Shake-Shake for a GPU cluster.

Claims and verdicts (95% intervals over the test set and seeds, from :mod:`storage.answers`):

1. Figure 2 — with L2 regularisation the basin is coupled (d log λ_norm*/d log α ≈ −1), with
   decoupled decay it is axis-aligned (≈ 0): per optimizer, ``reproduced`` when
   ``storage.coupling``'s verdict (from the λ_norm*(α), edge and valley slopes' intervals) is the expected one,
   ``not reproduced`` when it is the opposite one, else ``inconclusive``.
2. AdamW beats Adam (paper ≈ 15% relative on CIFAR-10 / ImageNet32x32), SGDW beats SGD: the relative
   improvement of the best settings, paired over seeds: ``reproduced`` when its interval lies above
   0, ``not reproduced`` when it lies below 0, else ``inconclusive``.
3. Appendix B.1 — λ_norm* constant across budgets while raw λ* shrinks like 1/√T: on the budgets
   whose best runs fit their training data (final train error ≤ :data:`FIT_TRAIN_ERROR`), the fitted
   exponent k of λ_norm* ∝ T^k (one joint fit over the budgets' profiles): ``reproduced`` when the
   √ rule (k = 0) is the only prediction its interval contains, ``not reproduced`` when the interval
   excludes k = 0 (whether it contains another prediction — τ a fixed fraction of the run, k = −½; τ
   fixed in epochs, k = +½ — or none), else ``inconclusive``.
4. Figure 4 — warm restarts' anytime advantage: the error the restart schedule reaches at its first
   restart, and the epochs the plain schedule needs to match it: ``reproduced`` when the speed-up's
   interval lies above 1, ``not reproduced`` when it lies below 1, else ``inconclusive``.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from storage.constants import FIT_TRAIN_ERROR
from storage.evidence import verdicts
from study.spec import SpecError, SweepSpec, load_spec
from trainers.optimizers import TABLE

PRESET_KEYS = ("figure2", "budgets", "restarts")
OPPOSITE = {"coupled": "decoupled", "decoupled": "coupled"}
#: Figure 2's prediction per optimizer: the basin is coupled under L2, axis-aligned under the paper's
#: decoupled decay — each optimizer's decay form in the trainers' table (lr-coupled: no claim of the paper).
EXPECTED_COUPLING = {o.name: o.decay_form for o in TABLE.values() if o.decay_form in OPPOSITE}
LABELS = {o.name: o.label for o in TABLE.values()}


@dataclass(frozen=True)
class Claim:
    """One row of the verdict table."""

    claim: str
    paper: str
    estimate: str
    verdict: str  # "reproduced" | "not reproduced" | "inconclusive"
    rests_on: str
    notes: str = ""


@dataclass(frozen=True)
class Preset:
    name: str
    specs: dict[str, tuple[SweepSpec, str]]  # key → (spec, its TOML text)


def load_preset(path: str | Path) -> Preset:
    """Read a preset file and its three specs; SpecError (one line) for anything wrong."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the preset ({type(exc).__name__}: {exc}); check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    missing = [k for k in PRESET_KEYS if k not in raw]
    extra = sorted(set(raw) - set(PRESET_KEYS))
    if missing or extra:
        raise SpecError(f"{path}: a preset names exactly {', '.join(PRESET_KEYS)} (spec paths); "
                        + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}"))
    return Preset(path.stem, {k: load_spec(path.parent / str(raw[k])) for k in PRESET_KEYS})


def _ci(lo, hi, fmt: str = "+.2f", scale: float = 1.0) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return "no interval"
    return f"[{scale * lo:{fmt}}, {scale * hi:{fmt}}]"


def _interval_verdict(lo, hi, threshold: float) -> str:
    """A claim that the estimate exceeds ``threshold``: ``storage.evidence.verdicts.side`` of its interval."""
    return {"above": "reproduced", "below": "not reproduced"}.get(verdicts.side((lo, hi), threshold), "inconclusive")


def coupling_claims(rdb, spec: SweepSpec, n_boot: int) -> list[Claim]:
    import storage

    out = []
    for c in storage.coupling(rdb, spec.name, n_boot=n_boot):
        expected = EXPECTED_COUPLING.get(c.optimizer)
        if expected is None:
            continue
        verdict = ("reproduced" if c.verdict == expected else
                   "not reproduced" if c.verdict == OPPOSITE[expected] else "inconclusive")
        parts = [f"{name} {value:+.2f} {_ci(*ci) if ci else 'no interval'}" for name, value, ci, _ in c.estimates()]
        estimate = f"{'; '.join(parts) or 'no slope'} → {c.verdict}"
        paper = "coupled: slope ≈ −1" if expected == "coupled" else "decoupled: slope ≈ 0"
        out.append(Claim(
            f"Figure 2: the {LABELS[c.optimizer]} basin is {expected}", paper, estimate, verdict,
            f"{spec.name} ({c.schedule}, T={c.budget}, {len(spec.seeds)} seeds; rests on "
            f"{' and '.join(c.rests_on) or 'no decided estimate'}; λ_norm* from {c.n_argmin_rows} basin rows)",
            "; ".join(c.notes)))
    return out


def comparison_claims(rdb, spec: SweepSpec, n_boot: int) -> list[Claim]:
    import storage

    out = []
    for h in storage.headline(rdb, spec.name, n_boot=n_boot).itertuples():
        if EXPECTED_COUPLING.get(h.coupled) != "coupled":  # the paper's comparisons are decoupled vs L2
            continue
        paper = "≈15% lower test error (CIFAR-10, ImageNet32x32)" if h.decoupled == "adamw" else \
            "lower test error (Figure 2: SGDW's basin is better and wider)"
        estimate = ("no estimate" if pd.isna(h.improvement) else
                    f"{100 * h.improvement:+.1f}% {_ci(h.improvement_lo, h.improvement_hi, '+.1f', 100)} "
                    f"({100 * h.decoupled_error:.2f}% vs {100 * h.coupled_error:.2f}%)")
        out.append(Claim(
            f"{LABELS[h.decoupled]} beats {LABELS[h.coupled]}", paper, estimate,
            {"better": "reproduced", "worse": "not reproduced"}.get(h.verdict, "inconclusive"),
            f"{spec.name} ({h.schedule}, T={h.budget}, {len(spec.seeds)} seeds, {h.selection}"
            f"{', paired' if h.paired else ''})", h.notes))
    return out


def budget_claims(rdb, spec: SweepSpec, n_boot: int) -> list[Claim]:
    import storage

    table = storage.best_by_budget(rdb, spec.name, n_boot=n_boot)
    out = []
    for (optimizer, schedule), group in table.groupby(["optimizer", "schedule"], sort=True):
        fit = sorted(int(b) for b in group.loc[group["fits"].astype(bool), "budget"])
        train = ", ".join(f"T={int(r.budget)}: {100 * r.train_error:.1f}%" for r in group.itertuples())
        notes = [f"final train error of the best runs: {train}"]
        claim = f"Appendix B.1: λ_norm* constant across budgets ({LABELS.get(optimizer, optimizer)})"
        paper = "λ_norm* flat (k = 0), raw λ* ∝ T^−½"
        if len(fit) < 2:
            out.append(Claim(claim, paper, "no exponent", "inconclusive", f"{spec.name} ({schedule})",
                             "; ".join(notes + [f"fewer than 2 budgets fit the training data (train error ≤ "
                                                f"{100 * FIT_TRAIN_ERROR:.0f}%): the claim is about runs that do"])))
            continue
        g = storage.best_by_budget(rdb, spec.name, [optimizer], [schedule], n_boot=n_boot, budgets=fit).iloc[0]
        if pd.isna(g["k"]):
            verdict, estimate = "inconclusive", "no exponent"
        else:
            estimate = (f"k = {g['k']:+.2f} {_ci(g['k_lo'], g['k_hi'])}; raw λ* ∝ T^{g['raw_exponent']:+.2f}; "
                        f"{g['verdict']}")
            excludes_zero = not (g["k_lo"] <= 0.0 <= g["k_hi"])  # the paper's k = 0 lies outside the interval
            verdict = ("reproduced" if g["favoured"] == "sqrt_rule" else
                       "not reproduced" if excludes_zero else "inconclusive")
        if g["budget_notes"]:
            notes.append(g["budget_notes"])
        out.append(Claim(claim, paper, estimate, verdict,
                         f"{spec.name} ({schedule}, T = {', '.join(map(str, fit))}, {len(spec.seeds)} seeds)",
                         "; ".join(notes)))
    return out


def restart_claims(rdb, spec: SweepSpec, n_boot: int) -> list[Claim]:
    import storage

    out = []
    for r in storage.anytime(rdb, spec.name, n_boot=n_boot).itertuples():
        label = LABELS.get(r.optimizer, r.optimizer)
        match = (f"never within {r.budget} epochs" if r.censored else f"at epoch {int(r.plain_epoch)}")
        estimate = (f"{'≥ ' if r.censored else ''}{r.speedup:.2f}× {_ci(r.speedup_lo, r.speedup_hi, '.2f')} "
                    f"({100 * r.error:.2f}% at epoch {r.first_restart}; {r.plain_schedule} matches it {match})")
        out.append(Claim(
            f"Figure 4: {label} with warm restarts is ahead at its first restart", "up to 10× better anytime "
            "performance (AdamWR at its first restart)", estimate, _interval_verdict(r.speedup_lo, r.speedup_hi, 1.0),
            f"{spec.name} (T={r.budget}, {r.n_seeds} seeds, restart vs {r.plain_schedule})"))
    return out


def evaluate(rdb, preset: Preset, n_boot: int) -> list[Claim]:
    """Every claim of the preset, read from ``rdb`` (only what is recorded; nothing runs here)."""
    import storage

    claims: list[Claim] = []
    for key, fns in (("figure2", (coupling_claims, comparison_claims)), ("budgets", (budget_claims,)),
                     ("restarts", (restart_claims,))):
        spec = preset.specs[key][0]
        for fn in fns:
            try:
                claims += fn(rdb, spec, n_boot)
            except (storage.UnknownNameError, storage.EmptyStorageError):
                claims.append(Claim(fn.__name__.replace("_claims", ""), "", "no data", "inconclusive", spec.name,
                                    f"sweep {spec.name} has no results yet: run basin reproduce without --no-run"))
    return claims


def to_markdown(claims: list[Claim], preset: Preset) -> str:
    lines = ["| claim | the paper | Basin's estimate (95% interval) | verdict | rests on |", "|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c.claim} | {c.paper} | {c.estimate} | **{c.verdict}** | {c.rests_on} |")
    notes = [f"- {c.claim}: {c.notes}" for c in claims if c.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


def to_records(claims: list[Claim]) -> list[dict]:
    return [asdict(c) for c in claims]


def summary(claims: list[Claim]) -> str:
    counts = {v: sum(c.verdict == v for c in claims) for v in ("reproduced", "not reproduced", "inconclusive")}
    return ", ".join(f"{n} {v}" for v, n in counts.items())


__all__ = ["Claim", "Preset", "evaluate", "load_preset", "summary", "to_markdown", "to_records"]

