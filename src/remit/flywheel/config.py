"""Configuration of ``remit flywheel``: which stages run, on what data, for how many rounds.

The stage sections (``pretrain``, ``midtrain``, ``posttrain``, ``eval``) are the stages' own
configs written as mappings; the flywheel fills in the paths that connect the stages
(init checkpoint, reference, data, output folders) and validates every stage config before
anything runs, so a typo deep in a section fails in the first second, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remit.config import ConfigError, check_range

BASELINES = ("sft_guided", "kd", "rho1", "miniplm")


@dataclass
class FlywheelConfig:
    name: str = "default"
    runs_dir: str = "runs"
    seed: int = 0
    # Data. With world.enabled the embedded world is generated and used for every stage;
    # otherwise the data paths inside the stage sections are used as given.
    world: dict[str, Any] = field(default_factory=dict)
    use_world: bool = True
    # Start: a pre-annealing checkpoint (HF dir or hub id), or pre-train one from scratch.
    start_checkpoint: str | None = None
    pretrain: dict[str, Any] = field(default_factory=dict)
    midtrain: dict[str, Any] = field(default_factory=dict)
    posttrain: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    # ReMiT rounds after the vanilla round (1 = ReMiT, 2 = ReMiT^2, ...).
    rounds: int = 1
    # Baselines mid-trained from the same checkpoint with the round-0 references.
    baselines: list[str] = field(default_factory=list)
    posttrain_baselines: bool = False
    eval_suites: list[str] = field(default_factory=lambda: ["world"])
    report: bool = True

    def validate(self) -> None:
        check_range("rounds", self.rounds, 0, 10)
        for b in self.baselines:
            if b not in BASELINES:
                raise ConfigError(f"baselines: '{b}' is not known. Accepted values: {', '.join(BASELINES)}.")
        if not self.use_world and self.start_checkpoint is None and not self.pretrain.get("data"):
            raise ConfigError("use_world=false needs start_checkpoint or pretrain.data (the data to pre-train on).")
