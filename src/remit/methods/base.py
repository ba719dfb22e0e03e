"""What a mid-training method is: :class:`Method` (objective, needs, data preparation, names, statistics).

A method is one object in one table (``remit.methods.registry``); the config validation, the run
builder (``remit.midtrain.setup``), the flywheel and the report ask it instead of matching names:

    Method(name="remit", build=lambda cfg: ReMiT(epsilon=cfg.method.epsilon, ...),
           reference="logps", options=("epsilon", "temperature", ...), role="remit",
           stats={"w_mean": "mean token weight", ...})

:class:`Arm` is one mid-training run of the flywheel: a method with the model that guides it (the
round's RL model or the SFT model) and a label (``sft_guided`` = ReMiT guided by the SFT model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Method", "Arm", "PrepareContext", "Reference", "Role"]

# none: no frozen model; logps: per-token log-probs (an online model or a `remit score-reference` cache);
# logits: full distributions of an online model; scorer: a model used only by `prepare` (not during training).
Reference = Literal["none", "logps", "logits", "scorer"]
# What the report makes of a run of this method: the vanilla anneal, the ReMiT run, or a baseline.
Role = Literal["vanilla", "remit", "baseline"]


@dataclass
class PrepareContext:
    """What a method's data preparation gets: the packed data and a loader of checked frozen models.

    ``load_frozen(path, key)`` returns an online scorer (``batch -> (logps, None)``), checked against
    the policy's tokenizer and window; errors name the config ``key`` that gave ``path``.
    """

    cfg: Any  # the MidtrainConfig
    dataset: Any  # remit.data.PackedDataset
    load_frozen: Callable[[str, str], Any]
    device: str


@dataclass(frozen=True)
class Method:
    """One mid-training method. ``build(cfg)`` -> its objective (``remit.objectives``) from the MidtrainConfig.

    ``reference``: what it needs from the frozen model (see :data:`Reference`). ``options``: the
    ``method.*`` keys it reads (a key it does not read, set away from its default, is a config error).
    ``params``: defaults of its own ``method.params.*`` keys (for methods outside the built-in
    fields). ``prepare(ctx) -> (dataset, info)``: data preparation before training (MiniPLM's document
    selection); ``info`` goes into the run's manifest under the method's name. ``label``: how its runs and
    report rows are named (default: the name with ``_`` -> ``-``). ``stats``: its logged metrics (names from
    ``remit.objectives.stats.summarize``) with a description, for the report. ``reference_why``: the end of
    the error when ``reference.path`` is missing for ``logits`` / ``scorer``.
    """

    name: str
    build: Callable[[Any], Any]
    reference: Reference = "none"
    options: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[PrepareContext], tuple[Any, dict[str, Any]]] | None = None
    label: str | None = None
    role: Role = "baseline"
    stats: dict[str, str] = field(default_factory=dict)
    reference_why: str = ""
    help: str = ""

    @property
    def run_label(self) -> str:
        return self.label or self.name.replace("_", "-")

    @property
    def needs_reference(self) -> bool:
        return self.reference != "none"

    @property
    def needs_model(self) -> bool:
        """A reference model (``reference.path``) is required: a log-prob cache is not enough."""
        return self.reference in ("logits", "scorer")


@dataclass(frozen=True)
class Arm:
    """A flywheel mid-training run: ``method`` guided by ``guide`` (``rl``: the round's RL model; ``sft``: the
    SFT model of the same chain; ``none``), named ``label``."""

    name: str
    method: str
    guide: Literal["rl", "sft", "none"] = "rl"
    label: str | None = None
    role: Role | None = None  # None: the method's role

    @property
    def run_label(self) -> str:
        return self.label or self.name.replace("_", "-")
