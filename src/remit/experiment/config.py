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

TESTS = ("superiority", "noninferiority", "equivalence")


def arm_list(arms: str | list[str]) -> list[str]:
    """The arm labels of one side of a contrast (one label, or a list scored as their per-example mean)."""
    return [arms] if isinstance(arms, str) else list(arms)


def arm_name(arms: str | list[str]) -> str:
    """How a side is shown: ``vanilla``, or ``mean(remit-r1, remit-r1@chat)`` for a list."""
    labels = arm_list(arms)
    return labels[0] if len(labels) == 1 else f"mean({', '.join(labels)})"


@dataclass
class Contrast:
    name: str = ""
    # an arm label of every seed's flywheel (remit-r1, remit-r1+post, vanilla@chat), or a list of labels scored as
    # their per-example mean (the same held-out examples, paired by index): [remit-r1, remit-r1@chat]
    treatment: str | list[str] = ""
    baseline: str | list[str] = ""           # e.g. vanilla or vanilla+post
    # greater | less | two-sided, about the GAIN: treatment - baseline, sign-flipped for lower-is-better metrics
    # (bpb, loss), so "greater" always means "the treatment is better" (for bpb: lower). superiority only.
    alternative: str = "greater"
    margin: float = 0.0          # practical-size margin in the shown unit (points for accuracies); 0: none
    metric: str = ""             # suite/task/metric, default: the experiment's primary metric
    # superiority (the alternative above) | noninferiority (H0: gain <= -margin) | equivalence (TOST, +-margin)
    test: str = "superiority"
    standalone: bool = False     # a hypothesis tested on its own at alpha, outside the fixed sequence
    # the name of an earlier hypothesis: this one's arms come from a follow-up run made only if that hypothesis
    # is confirmed (e.g. a second ReMiT round); until they exist it is reported as not run (never an error)
    run_if: str = ""

    def validate(self) -> None:
        for side in ("treatment", "baseline"):
            labels = arm_list(getattr(self, side))
            if not labels or not all(labels):
                raise ConfigError(f"{side}: name an arm label (or a non-empty list of labels), e.g. "
                                  f"treatment: remit-r1, baseline: vanilla")
            if len(set(labels)) != len(labels):
                raise ConfigError(f"{side}={labels}: an arm is listed twice")
        if sorted(arm_list(self.treatment)) == sorted(arm_list(self.baseline)):
            raise ConfigError(f"treatment = baseline = {arm_name(self.treatment)!r}: a contrast needs two different arms")
        check_choice("alternative", self.alternative, ALTERNATIVES)
        check_choice("test", self.test, TESTS)
        check_range("margin", self.margin, 0.0)
        if self.test != "superiority":
            if self.margin <= 0:
                raise ConfigError(f"margin={self.margin:g}: test: {self.test} needs a margin > 0 (points for "
                                  f"accuracies), e.g. margin: 1.0")
            if self.alternative != "greater":
                raise ConfigError(f"alternative={self.alternative!r}: only test: superiority reads alternative; "
                                  f"test: {self.test} is about the gain (treatment - baseline); drop alternative")
        if self.metric and len(self.metric.split("/")) != 3:
            raise ConfigError(f"metric={self.metric!r}: give suite/task/metric, e.g. world/world/exact_match")

    @property
    def arms(self) -> list[str]:
        """Every arm label the contrast reads."""
        return [*arm_list(self.treatment), *arm_list(self.baseline)]

    @property
    def label(self) -> str:
        return self.name or f"{arm_name(self.treatment)} vs {arm_name(self.baseline)}"


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
                if not isinstance(getattr(c, side), str):
                    raise ConfigError(f"efficiency[{i}].{side}: give one curve arm, not a list")
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
class Extension:
    """A two-stage (group-sequential) design: stage 1 tests the hypotheses on the experiment's ``seeds`` that are
    not extension ``seeds``, at ``alpha_first``; when one of ``hypotheses`` has a one-sided p inside ``window``
    the extension seeds are run too and stage 2 tests every hypothesis on all seeds at ``alpha - alpha_first``."""

    seeds: list[int] = field(default_factory=list)         # e.g. [5, 6, 7, 8, 9]
    alpha_first: float = 0.0                                # stage 1's alpha, e.g. 0.01 (stage 2: alpha - this)
    window: list[float] = field(default_factory=list)       # [lo, hi] of the one-sided p that triggers stage 2
    hypotheses: list[str] = field(default_factory=list)     # names of the hypotheses whose p can trigger it

    def __bool__(self) -> bool:
        return bool(self.seeds or self.window or self.hypotheses or self.alpha_first)

    def validate(self) -> None:
        if not self:
            return
        if not self.seeds:
            raise ConfigError("seeds: name the extension seeds, e.g. extension: {seeds: [5, 6, 7, 8, 9], ...} "
                              "(or extension: {} for none)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds={self.seeds}: a seed is listed twice")
        if len(self.window) != 2 or not 0.0 <= self.window[0] < self.window[1] <= 1.0:
            raise ConfigError(f"window={self.window}: give [lo, hi] with 0 <= lo < hi <= 1, e.g. [0.01, 0.30]")
        if not self.hypotheses:
            raise ConfigError("hypotheses: name the hypotheses whose p can trigger the extension, e.g. [H1, H2]")


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
    # controls (a placebo within +-margin of vanilla: test: equivalence), each tested on its own at alpha
    controls: list[Contrast] = field(default_factory=list, metadata={"omit_if_empty": True})
    # extra seeds run only if a hypothesis's stage-1 p lies in a window (alpha split between the stages)
    extension: Extension = field(default_factory=Extension, metadata={"omit_if_empty": True})
    alpha: float = 0.05
    confidence: float = 0.95
    power: float = 0.8
    n_boot: int = 2000
    # gates G1-G4 and the manipulation checks (remit.experiment.gates); absent: none, {}: issue #22's thresholds
    gates: GatesConfig | None = field(default=None, metadata={"omit_if_empty": True})
    analyze_only: bool = False     # read the finished seeds and write the results; train nothing
    # build the shared start (world + pre-annealing checkpoint) and stop: no arm is trained, nothing analysed
    # (a confirmatory run's start can be built while its pre-registration is being committed)
    start_only: bool = False

    def validate(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed (two or more for a seed-level interval)")
        if self.start_only and self.analyze_only:
            raise ConfigError("start_only and analyze_only: pick one (start_only trains the start, analyze_only "
                              "reads finished seeds)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds={self.seeds}: a seed is listed twice")
        check_range("jobs", self.jobs, 1)
        if len(self.metric.split("/")) != 3:
            raise ConfigError(f"metric={self.metric!r}: give suite/task/metric, e.g. world/world/exact_match")
        for key in ("alpha", "confidence", "power"):
            check_range(key, getattr(self, key), 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("n_boot", self.n_boot, 100)
        names = [c.label for c in [*self.hypotheses, *self.exploratory, *self.controls]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"hypotheses/exploratory/controls: the name {dup[0]!r} is used twice")
        for i, c in enumerate(self.hypotheses):
            earlier = [h.label for h in self.hypotheses[:i]]
            if c.run_if and c.run_if not in earlier:
                raise ConfigError(f"hypotheses[{i}].run_if={c.run_if!r}: name an earlier hypothesis "
                                  f"({', '.join(earlier) or 'there is none'})")
        for key in ("exploratory", "controls"):
            for i, c in enumerate(getattr(self, key)):
                if c.run_if:
                    raise ConfigError(f"{key}[{i}].run_if: only hypotheses can wait for a follow-up run; drop it")
                if c.standalone:
                    raise ConfigError(f"{key}[{i}].standalone: only hypotheses can be standalone ({key} are "
                                      f"tested on their own already); drop it")
        self._validate_extension()
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

    def _validate_extension(self) -> None:
        ext = self.extension
        if not ext:
            return
        if not 0.0 < ext.alpha_first < self.alpha:
            raise ConfigError(f"extension.alpha_first={ext.alpha_first:g}: give 0 < alpha_first < alpha "
                              f"({self.alpha:g}); stage 2 tests at alpha - alpha_first")
        first = self.stage1_seeds
        if len(first) < 2:
            raise ConfigError(f"extension.seeds={ext.seeds}: stage 1 (seeds={self.seeds} less the extension seeds) "
                              f"needs at least 2 seeds")
        names = [c.label for c in self.hypotheses]
        for i, h in enumerate(ext.hypotheses):
            if h not in names:
                raise ConfigError(f"extension.hypotheses[{i}]={h!r}: not a hypothesis name "
                                  f"({', '.join(names) or 'no hypotheses'})")

    @property
    def stage1_seeds(self) -> list[int]:
        """The seeds of the first stage: every seed when there is no extension."""
        return [s for s in self.seeds if s not in set(self.extension.seeds)]

    @property
    def curve_metrics(self) -> list[str]:
        return list(self.curves.metrics) or [self.metric]
