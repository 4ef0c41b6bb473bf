"""The optimizer table: every fact about an optimizer that is not its arithmetic, written once.

One :class:`Optimizer` per name Basin trains: its *family* (which packed update runs it and which
hyperparameters it takes: ``"sgd"`` — momentum and momentum form — or ``"adam"`` — β₁, β₂, ε), its
*decay form* — where λ enters the update —, its display labels and the optimizer it is compared with.

Decay forms (α the initial learning rate, η_t the schedule multiplier, λ the raw weight decay):

``"coupled"``     L2 regularisation: λ·θ is added to the gradient, g_t = ∇f + λθ_{t−1}, and then scaled
                  by the optimizer like any gradient (SGD+L2, Adam+L2: the basin follows α·λ = const).
``"decoupled"``   the paper's weight decay: θ shrinks by η_t·λ·θ_{t−1} each step, outside the gradient
                  and **not** multiplied by α (SGDW, AdamW: the basin is axis-aligned).
``"lr-coupled"``  torch.optim.AdamW / optax: θ shrinks by α·η_t·λ·θ_{t−1} — decoupled from the
                  gradient but multiplied by the learning rate (``adamw-torch``).

Readers: :mod:`trainers.optim` and :mod:`trainers.pack_optim` pick the update's decay term from
:attr:`Optimizer.decay_form`; ``study/driver.py`` records :meth:`Optimizer.attr` as each study's
``optimizer_info`` user attr, which is how ``storage/`` and ``dashboards/`` (which import no trainers)
learn the comparison pairs and the labels; ``study/reproduce.py`` reads the expected coupling and
the labels from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FAMILIES = ("sgd", "adam")
DECAY_FORMS = ("coupled", "decoupled", "lr-coupled")
#: The decay forms each family's update implements (unpacked and packed).
FAMILY_FORMS = {"sgd": ("coupled", "decoupled"), "adam": ("coupled", "decoupled", "lr-coupled")}


@dataclass(frozen=True)
class Optimizer:
    """One row of the table (module doc)."""

    name: str
    family: str  # "sgd" | "adam"
    decay_form: str  # "coupled" | "decoupled" | "lr-coupled"
    label: str  # display name: "AdamW", "SGD+L2"
    #: the display name of its warm-restart variant (Figure 4: "AdamWR"); None: the label
    restart_label: str | None
    #: the decoupled optimizer this one is compared against ("adam" → "adamw": AdamW vs Adam); None
    #: for the decoupled references themselves
    pair: str | None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {', '.join(FAMILIES)}; got {self.family!r}")
        if self.decay_form not in FAMILY_FORMS[self.family]:
            raise ValueError(f"{self.name}: the {self.family} family implements the decay forms "
                             f"{', '.join(FAMILY_FORMS[self.family])}; got {self.decay_form!r}")

    @property
    def l2(self) -> bool:
        """λ·θ enters the gradient (decay form ``"coupled"``)."""
        return self.decay_form == "coupled"

    @property
    def lr_coupled(self) -> bool:
        """The decay is multiplied by α·η_t rather than η_t (decay form ``"lr-coupled"``)."""
        return self.decay_form == "lr-coupled"

    def attr(self) -> dict:
        """The study user attr ``optimizer_info`` (JSON): every field of this row."""
        return asdict(self)


TABLE: dict[str, Optimizer] = {o.name: o for o in (
    Optimizer("sgd", "sgd", "coupled", "SGD+L2", "SGDR+L2", pair="sgdw"),
    Optimizer("sgdw", "sgd", "decoupled", "SGDW", "SGDWR", pair=None),
    Optimizer("adam", "adam", "coupled", "Adam+L2", "AdamR+L2", pair="adamw"),
    Optimizer("adamw", "adam", "decoupled", "AdamW", "AdamWR", pair=None),
    Optimizer("adamw-torch", "adam", "lr-coupled", "AdamW (torch, lr-coupled)", None, pair="adamw"),
)}
#: Every optimizer name, in the table's order (Figure 2's reading order: SGD, SGDW, Adam, AdamW).
OPTIMIZERS = tuple(TABLE)


def get(name: str) -> Optimizer:
    """The table's row of ``name``; ValueError naming the known optimizers otherwise."""
    try:
        return TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}") from None


def in_family(family: str) -> tuple[str, ...]:
    """The optimizers of ``family``, in the table's order."""
    return tuple(o.name for o in TABLE.values() if o.family == family)


__all__ = ["DECAY_FORMS", "FAMILIES", "FAMILY_FORMS", "OPTIMIZERS", "TABLE", "Optimizer", "get", "in_family"]
