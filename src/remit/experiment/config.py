"""Configuration of ``remit experiment``: one start, arms x seeds, and hypotheses fixed before the run.

An experiment runs one flywheel per seed from one shared pre-annealing checkpoint (built once, or given);
the arms are the models each seed's flywheel produces (``vanilla``, ``remit-r1``, ``remit-r1+post``,
``sft-guided``, ``kd``, ...; their set is the flywheel section's ``rounds``/``baselines``). Hypotheses
compare two arms on the primary metric, seed by seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remit.config import check_choice, check_range
from remit.errors import ConfigError
from remit.eval.stats import ALTERNATIVES
from remit.experiment.gates import GatesConfig
from remit.flywheel.config import extra_arms


@dataclass
class Contrast:
    name: str = ""
    treatment: str = ""          # an arm label of every seed's flywheel, e.g. remit-r1 or remit-r1+post
    baseline: str = ""           # e.g. vanilla or vanilla+post
    # greater | less | two-sided, about the GAIN: treatment - baseline, sign-flipped for lower-is-better metrics
    # (bpb, loss), so "greater" always means "the treatment is better" (for bpb: lower).
    alternative: str = "greater"
    margin: float = 0.0          # practical-size margin in the shown unit (points for accuracies); 0: none
    metric: str = ""             # suite/task/metric, default: the experiment's primary metric

    def validate(self) -> None:
        if not self.treatment or not self.baseline:
            raise ConfigError("treatment and baseline: name two arm labels, e.g. treatment: remit-r1, baseline: vanilla")
        if self.treatment == self.baseline:
            raise ConfigError(f"treatment = baseline = {self.treatment!r}: a contrast needs two different arms")
        check_choice("alternative", self.alternative, ALTERNATIVES)
        check_range("margin", self.margin, 0.0)
        if self.metric and len(self.metric.split("/")) != 3:
            raise ConfigError(f"metric={self.metric!r}: give suite/task/metric, e.g. world/world/exact_match")

    @property
    def label(self) -> str:
        return self.name or f"{self.treatment} vs {self.baseline}"


@dataclass
class Curves:
    """Evaluation at fixed token counts during the mid-training of ``arms`` (the flywheel's ``curves``: a
    weights-only snapshot per count, scored with ``remit eval`` and then deleted), and, per ``efficiency``
    pair, the tokens the treatment needs to reach the baseline's final value."""

    arms: list[str] = field(default_factory=list)      # mid-trained arm labels, e.g. [vanilla, remit-r1]
    tokens: list[int] = field(default_factory=list)    # token counts; or
    points: int = 0                                    # N evenly spaced points from 0 to each arm's budget
    eval: dict[str, Any] = field(default_factory=dict)  # overrides of the curve evaluations, e.g. {limit: 100}
    metrics: list[str] = field(default_factory=list)   # suite/task/metric read along the curves; default: primary
    efficiency: list[Contrast] = field(default_factory=list)  # {treatment, baseline[, metric]}: curve arms

    def __bool__(self) -> bool:
        return bool(self.arms)

    def validate(self) -> None:
        for m in self.metrics:
            if len(m.split("/")) != 3:
                raise ConfigError(f"metrics: {m!r}: give suite/task/metric, e.g. world/world/bpb")
        for i, c in enumerate(self.efficiency):
            for side in ("treatment", "baseline"):
                if getattr(c, side) not in self.arms:
                    raise ConfigError(f"efficiency[{i}].{side}={getattr(c, side)!r}: not one of curves.arms "
                                      f"({', '.join(self.arms) or 'none'}); a sample-efficiency reading needs both curves")

    def flywheel(self, metrics: list[str]) -> dict[str, Any]:
        """The flywheel's ``curves`` section: scored with the suites of ``metrics``."""
        if not self.arms:
            return {}
        return {"arms": list(self.arms), "tokens": list(self.tokens), "points": self.points, "eval": dict(self.eval),
                "suites": sorted({m.split("/")[0] for m in metrics})}


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    runs_dir: str = "runs/experiments"
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    jobs: int = 1                  # seeds run at once, each in its own process
    start_seed: int = 0            # seed of the shared start (world + pre-training) and of every seed's world
    start_checkpoint: str = ""     # a given pre-annealing checkpoint; empty: built once from the flywheel section
    flywheel_config: str = ""      # a flywheel YAML (as `remit flywheel --config`); empty: the embedded default
    flywheel: dict[str, Any] = field(default_factory=dict)  # flywheel keys shared by every seed (override the YAML)
    # a `remit prepare` config (remit.corpus: recipe, out_dir, ...) run once before the start; the flywheel
    # section reads its files by path
    prepare: dict[str, Any] = field(default_factory=dict, metadata={"omit_if_empty": True})
    # extra mid-training arms of every seed's flywheel: [{name, from: <arm>, overrides: {dotted.key: value},
    # posttrain: false}] (a budget arm: overrides {token_budget: ...}; a placebo: {method.name: remit_placebo})
    arms: list[dict[str, Any]] = field(default_factory=list)
    curves: Curves = field(default_factory=Curves)  # evaluation at fixed token counts during mid-training
    metric: str = "world/world/exact_match"  # the primary metric: suite/task/metric of `remit eval` results
    hypotheses: list[Contrast] = field(default_factory=list)   # pre-registered, ordered: fixed-sequence at alpha
    exploratory: list[Contrast] = field(default_factory=list)  # follow-ups: Holm-adjusted, labelled exploratory
    alpha: float = 0.05
    confidence: float = 0.95
    power: float = 0.8
    n_boot: int = 2000
    # gates G1-G4 and the manipulation checks (remit.experiment.gates); absent: none, {}: issue #22's thresholds
    gates: GatesConfig | None = field(default=None, metadata={"omit_if_empty": True})
    analyze_only: bool = False     # read the finished seeds and write the results; train nothing

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed (two or more for a seed-level interval)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds={self.seeds}: a seed is listed twice")
        check_range("jobs", self.jobs, 1)
        if len(self.metric.split("/")) != 3:
            raise ConfigError(f"metric={self.metric!r}: give suite/task/metric, e.g. world/world/exact_match")
        for key in ("alpha", "confidence", "power"):
            check_range(key, getattr(self, key), 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("n_boot", self.n_boot, 100)
        names = [c.label for c in [*self.hypotheses, *self.exploratory]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"hypotheses/exploratory: the name {dup[0]!r} is used twice")
        for key in ("runs_dir", "name", "seed", "start_checkpoint", "arms", "curves"):
            if key in self.flywheel:
                raise ConfigError(f"flywheel.{key}: set by the experiment for each seed; use the experiment's "
                                  f"{'start_seed/seeds' if key == 'seed' else key} instead")
        extra_arms(self.arms)
        if self.prepare:
            from remit.config import build_config
            from remit.corpus.stage import CorpusConfig

            build_config(CorpusConfig, self.prepare, "prepare")
        for i, c in enumerate(self.curves.efficiency):
            if c.metric and c.metric not in self.curve_metrics:
                raise ConfigError(f"curves.efficiency[{i}].metric={c.metric!r}: not a curve metric; add it to "
                                  f"curves.metrics (now: {', '.join(self.curve_metrics)})")

    @property
    def curve_metrics(self) -> list[str]:
        return list(self.curves.metrics) or [self.metric]
