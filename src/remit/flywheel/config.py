"""Configuration of ``remit flywheel``: which stages run, on what data, for how many rounds.

The stage sections (``pretrain``, ``midtrain``, ``posttrain``, ``eval``) are the stages' own
configs written as mappings; the flywheel fills in the paths that connect the stages
(init checkpoint, reference, data, output folders) and validates every stage config before
anything runs, so a typo deep in a section fails in the first second, naming the key.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from remit.config import ConfigError, check_range, from_dict, set_dotted
from remit.methods.registry import arm_names
from remit.midtrain.config import MethodConfig, MidtrainConfig
from remit.world.config import WorldConfig


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``over`` merged in: values of ``over`` win, nested mappings merge."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# The embedded default: a ~1.1M-parameter Llama from scratch on the generated chain world (chat tasks in the
# mid-training mix), sized for `remit flywheel` with no arguments to take about 10 minutes on 2 idle CPU cores (README, "The embedded default").
# configs/flywheel/default.yaml spells out the same values (a test keeps the two equal).
def default_pretrain() -> dict[str, Any]:
    return {
        "model": {"tokenizer_vocab_size": 512, "tokenizer_split_digits": True,
                  "fresh": {"arch": "llama", "hidden_size": 128, "num_layers": 4, "num_heads": 4,
                            "max_position_embeddings": 512}},
        "data": {"seq_len": 256},
        "optim": {"lr": 2.0e-3, "batch_size": 16, "micro_batch_size": 16},
        "schedule": {"kind": "constant", "warmup_fraction": 0.05, "decay_fraction": 0.0},
        # ~3M tokens: where this model learns to copy operands from the question (1M is not enough:
        # benchmarks/results/flywheel/calibration.md), so worked solutions become right and RL has a choice.
        "token_budget": 3_000_000,
        "checkpoint_every": 100,
        "logging": {"every": 10},
    }


def default_midtrain() -> dict[str, Any]:
    return {
        "data": {"seq_len": 256},
        "optim": {"lr": 1.0e-3, "batch_size": 16, "micro_batch_size": 16},
        "schedule": {"kind": "wsd", "warmup_fraction": 0.0, "decay_fraction": 1.0, "decay_shape": "linear",
                     "min_lr_ratio": 0.01},
        "token_budget": 500_000,
        "checkpoint_every": 50,
        "logging": {"every": 5},
        "method": {"epsilon": 0.2, "temperature": 1.0},
    }


def default_posttrain() -> dict[str, Any]:
    # Every stage measures the greedy held-out reward on the same 500 prompts (paired CIs in the report).
    return {"sft": {"max_steps": 120, "eval": {"n": 500}},
            "dpo": {"learning_rate": 5e-6, "eval": {"n": 500}},
            # T=1.0 here (the stage's 0.7 was tuned on the classic world): GRPO groups keep a reward spread
            # (16% without one vs 48% at 0.7) and the held-out gain is the same (calibration.md).
            "grpo": {"temperature": 1.0, "eval": {"n": 500}}}


# The embedded default's A/A arm (``arms``): vanilla mid-trained again with another packing seed, i.e. another
# order of the same documents (the flywheel never sets data.pack_seed, so it differs from vanilla's in every seed).
AA_ARM: dict[str, Any] = {"name": "vanilla-aa", "from": "vanilla", "overrides": {"data.pack_seed": 1}, "chat": True}

# Keys of an extra arm's mid-training that the flywheel sets itself.
_ARM_FIXED = ("out_dir", "resume", "overwrite")
_ARM_KEYS = ("name", "from", "overrides", "posttrain", "world", "chat")


@dataclass(frozen=True)
class ExtraArm:
    """One more mid-training arm: the config of arm ``base`` (same start checkpoint, reference, data order and
    schedule shape) with dotted ``overrides``, evaluated like every arm (also asked as chats,
    ``<name>@chat``, when ``chat``), post-trained when ``posttrain``;
    with ``world``, mid-trained on the ``midtrain.jsonl`` of the flywheel's world with those keys changed
    (e.g. ``midtrain_chat_frac: 0.5``), every other split (post-training, held-out tasks) the flywheel's own."""

    name: str
    base: str
    overrides: dict[str, Any]
    posttrain: bool = False
    world: dict[str, Any] = field(default_factory=dict)  # world keys: mid-train on that world's midtrain.jsonl
    chat: bool = False  # also evaluated asked as chats (as if named in chat_evals)


def extra_arms(items: list[Any]) -> list[ExtraArm]:
    """The ``arms`` key parsed and checked (every override key against the mid-training config); an error
    names ``arms[i].<key>``. Whether ``from`` names an arm of the flywheel is checked when it is planned."""
    out: list[ExtraArm] = []
    for i, item in enumerate(items):
        where = f"arms[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping such as {{name: remit-tau3, from: remit-r1, "
                              f"overrides: {{method.temperature: 3.0}}}}, got {item!r}")
        unknown = [k for k in item if k not in _ARM_KEYS]
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: not a key of an arm. Accepted keys: {', '.join(_ARM_KEYS)}")
        name, base = str(item.get("name") or ""), str(item.get("from") or "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ConfigError(f"{where}.name={name!r}: give a label of letters, digits, '.', '_' or '-' "
                              f"(it names the arm's folders, e.g. remit-tau3)")
        if name in [a.name for a in out]:
            raise ConfigError(f"{where}.name={name!r}: used by an earlier arm")
        if not base:
            raise ConfigError(f"{where}.from: name the arm it starts from, e.g. from: remit-r1")
        overrides = item.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where}.overrides: expected a mapping of dotted keys, e.g. {{token_budget: 250000}}")
        for key, value in overrides.items():
            if str(key).split(".")[0] in _ARM_FIXED:
                raise ConfigError(f"{where}.overrides.{key}: set by the flywheel for every arm; leave it out")
            set_dotted({}, str(key), value, MidtrainConfig, shown=f"{where}.overrides.{key}")
        posttrain, chat = item.get("posttrain", False), item.get("chat", False)
        for key, flag in (("posttrain", posttrain), ("chat", chat)):
            if not isinstance(flag, bool):
                raise ConfigError(f"{where}.{key}={flag!r}: give true or false")
        world = item.get("world") or {}
        if not isinstance(world, dict):
            raise ConfigError(f"{where}.world: expected a mapping of world keys, e.g. {{midtrain_chat_frac: 0.5}}")
        for key, value in world.items():
            if str(key) in ("out_dir", "seed"):
                raise ConfigError(f"{where}.world.{key}: set by the flywheel (the flywheel's world seed); leave it out")
            set_dotted({}, str(key), value, WorldConfig, shown=f"{where}.world.{key}")
        if world and any(str(k).startswith("data.sources") for k in overrides):
            raise ConfigError(f"{where}: give world (its midtrain.jsonl becomes the arm's data) or "
                              f"overrides.data.sources, not both")
        out.append(ExtraArm(name, base, {str(k): v for k, v in overrides.items()}, posttrain,
                            {str(k): v for k, v in world.items()}, chat))
    return out


@dataclass
class CurveSpec:
    """Evaluation at fixed token counts along mid-training, for curves (``remit.flywheel.run``'s curve stages).

    Each arm in ``arms`` writes a weights-only snapshot (``snapshot_tokens`` of its mid-training) at each
    count; each snapshot is scored with ``remit eval`` and deleted once scored. Token 0 (the pre-annealing
    checkpoint) and the arm's end are points too. ``tokens`` are counts; ``points`` = N evenly spaced points
    from 0 to each arm's own budget instead (N >= 2). ``eval``: overrides of the curve evaluations (e.g.
    ``limit: 100``); with none, the 0 and end points are the arms' own evaluations."""

    arms: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    points: int = 0
    eval: dict[str, Any] = field(default_factory=dict)
    suites: list[str] = field(default_factory=list)  # default: the flywheel's eval_suites

    def __bool__(self) -> bool:  # empty (no curve arms): left out of the saved config, so old hashes hold
        return bool(self.arms)

    def validate(self) -> None:
        if not self.arms:
            return
        if bool(self.tokens) == bool(self.points):
            raise ConfigError("tokens: give tokens (token counts) or points (evenly spaced, >= 2), one of the two")
        if self.points:
            check_range("points", self.points, 2, 1000)
        for t in self.tokens:
            check_range("tokens", t, 1)
        for key in ("model", "out_dir", "suite", "chat"):
            if key in self.eval:
                raise ConfigError(f"eval.{key}: set by the flywheel for every curve point; leave it out")


@dataclass
class FlywheelConfig:
    name: str = "default"
    runs_dir: str = "runs"
    seed: int = 0
    # Data. With world.enabled the embedded world is generated and used for every stage;
    # otherwise the data paths inside the stage sections are used as given.
    # held-out tasks per kind; 40% of the solved-task mid-training documents written as chats (the format the
    # RL reference was post-trained in, so what RL changed is visible in the text ReMiT weights; issue #22)
    world: dict[str, Any] = field(default_factory=lambda: {"n_eval": 500, "midtrain_chat_frac": 0.4})
    use_world: bool = True
    # Start: a pre-annealing checkpoint (HF dir or hub id), or pre-train one from scratch.
    start_checkpoint: str | None = None
    pretrain: dict[str, Any] = field(default_factory=default_pretrain)
    midtrain: dict[str, Any] = field(default_factory=default_midtrain)
    posttrain: dict[str, Any] = field(default_factory=default_posttrain)
    eval: dict[str, Any] = field(default_factory=dict)
    # ReMiT rounds after the vanilla round (1 = ReMiT, 2 = ReMiT^2, ...).
    rounds: int = 1
    # Baselines mid-trained from the same checkpoint with the round-0 references.
    baselines: list[str] = field(default_factory=list)
    posttrain_baselines: bool = False
    # Extra mid-training arms: [{name, from: <arm label>, overrides: {dotted.key: value}, posttrain: false}]
    # The default: an A/A arm, vanilla again with another packing (data-order) seed: the noise floor of the
    # ReMiT-vs-vanilla difference in one run (the report's "The loop, arrow by arrow").
    arms: list[dict[str, Any]] = field(default_factory=lambda: [copy.deepcopy(AA_ARM)], metadata={"omit_if_empty": True})
    curves: CurveSpec = field(default_factory=CurveSpec, metadata={"omit_if_empty": True})
    # Base models (labels) also evaluated asked as chats (chat template, the question itself): label <label>@chat
    # (the default: P, vanilla and ReMiT: the probe's base models, and base accuracy in both prompt formats)
    chat_evals: list[str] = field(default_factory=lambda: ["pre-annealing", "vanilla", "remit-r1"],
                                  metadata={"omit_if_empty": True})
    # Chat evaluations of the world suite also score the style probe's teacher-forced part (p_worked: does a chat
    # answer start with the worked steps? eval's world_probe_style_only; seconds per model)
    style_probe: bool = True
    eval_suites: list[str] = field(default_factory=lambda: ["world"])
    # eval keys of one suite over the `eval` section, e.g. {gold: {limit: null}} (paper10 keeps eval.limit)
    suite_eval: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"omit_if_empty": True})
    report: bool = True
    # keys of `remit report` for the report at the end (run_dir is the flywheel's), e.g. {guidance_texts: 16}
    report_options: dict[str, Any] = field(default_factory=dict, metadata={"omit_if_empty": True})
    quiet: bool = True  # hide the libraries' own progress bars and advisory warnings
    # Runs pretrain/midtrain/posttrain on several processes, e.g. "torchrun --nproc_per_node 8" (flywheel/launch.py)
    launcher: str = ""

    def __post_init__(self) -> None:
        # A section given in YAML or as key=value overrides the embedded defaults key by key.
        self.pretrain = deep_merge(default_pretrain(), self.pretrain)
        self.midtrain = deep_merge(default_midtrain(), self.midtrain)
        self.posttrain = deep_merge(default_posttrain(), self.posttrain)

    def validate(self) -> None:
        check_range("rounds", self.rounds, 0, 10)
        from remit.flywheel.launch import launch_prefix

        launch_prefix(self.launcher)  # a launcher that cannot run fails now, naming the key
        # Each arm takes only the midtrain.method keys its method reads, so a mistyped key would vanish
        # silently: it is checked against MethodConfig here, once, naming the key.
        from_dict(MethodConfig, self.midtrain.get("method", {}), prefix="midtrain.method.")
        accepted = arm_names("baseline")
        for b in self.baselines:
            if b not in accepted:
                raise ConfigError(f"baselines: '{b}' is not known. Accepted values: {', '.join(accepted)} "
                                  f"(arms and methods of remit.methods; a plugin's methods too).")
        extra_arms(self.arms)
        for suite, keys in self.suite_eval.items():
            if suite not in self.eval_suites or not isinstance(keys, dict):
                raise ConfigError(f"suite_eval.{suite}: give eval keys of one of eval_suites "
                                  f"({', '.join(self.eval_suites)}), e.g. suite_eval: {{gold: {{limit: null}}}}")
        if not self.use_world and self.start_checkpoint is None and not self.pretrain.get("data"):
            raise ConfigError("use_world=false needs start_checkpoint or pretrain.data (the data to pre-train on).")
