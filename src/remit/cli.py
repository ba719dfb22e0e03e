"""The ``remit`` command: one subcommand per stage.

    remit [--plugin MODULE ...] <stage> [--config FILE] [key=value ...] [--key value ...] [--flag]

Every stage is a module exposing a config dataclass and ``run(config) -> path``; the
table below maps subcommands to them, imported lazily so that ``remit --help`` is fast.
``--key value`` is sugar for ``key=value`` and a bare ``--flag`` for ``flag=true``;
positional arguments fill the stage's list field (``remit compare A B``).
``--plugin MODULE`` (anywhere, repeatable) imports a module first: one that registers mid-training
methods of its own (``remit.methods.register_method``). Errors raised on purpose
(:class:`remit.errors.RemitError`) are printed as one line, exit code 2, without a traceback.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

from remit import __version__
from remit.config import load_config
from remit.errors import RemitError
from remit.methods import load_plugins


@dataclass(frozen=True)
class Stage:
    module: str  # module with the config class and run()
    config: str  # name of the config dataclass in that module
    help: str
    run: str = "run"
    positional: str | None = None  # config field that takes positional arguments (a list)


# Only stages that really work are listed here.
STAGES: dict[str, Stage] = {}


def register(name: str, stage: Stage) -> None:
    STAGES[name] = stage


def _load_stages() -> None:
    """The stage table; each line is added once its module exists."""
    table = {
        "pretrain": Stage("remit.midtrain.stage", "PretrainConfig", "pre-train a model (constant/WSD LR)", run="run_pretrain"),
        "midtrain": Stage("remit.midtrain.stage", "MidtrainConfig", "mid-train (anneal) with ReMiT or a baseline"),
        "score-reference": Stage("remit.midtrain.score", "ScoreConfig", "cache per-token reference log-probs"),
        "prepare-data": Stage("remit.midtrain.prepare", "PrepareConfig", "tokenise and pack the data once (cached)"),
        "prepare": Stage("remit.corpus.stage", "CorpusConfig", "build a data recipe's jsonl files from raw public data"),
        "plan": Stage("remit.midtrain.plan", "PlanConfig", "offline: a config's mix, disk, memory and GPU-hours"),
        "sft": Stage("remit.posttrain.sft", "SFTStageConfig", "supervised fine-tuning (TRL SFTTrainer)"),
        "dpo": Stage("remit.posttrain.dpo", "DPOStageConfig", "on-policy DPO (TRL DPOTrainer)"),
        "grpo": Stage("remit.posttrain.grpo", "GRPOStageConfig", "RL with verifiable rewards (TRL GRPOTrainer)"),
        "posttrain": Stage("remit.posttrain.chain", "PosttrainConfig", "the SFT -> DPO -> GRPO chain"),
        "eval": Stage("remit.eval.run", "EvalConfig", "evaluate a model on a benchmark suite"),
        "compare": Stage("remit.eval.compare", "CompareConfig", "compare eval results with paired bootstrap CIs",
                         positional="runs"),
        "experiment": Stage("remit.experiment.run", "ExperimentConfig",
                            "arms x seeds from one start, tested at the seed level"),
        "stats": Stage("remit.eval.seeds", "SeedStatsConfig", "seed-level t intervals of per-seed contrasts",
                       positional="files"),
        "world": Stage("remit.world.stage", "WorldConfig", "generate the embedded default world's data"),
        "flywheel": Stage("remit.flywheel.run", "FlywheelConfig", "run the whole pre/mid/post-training flywheel"),
        "report": Stage("remit.report.build", "ReportConfig", "build report.md/html for a flywheel run"),
        "analyze weights": Stage("remit.report.heatmap", "WeightsConfig", "token heat-map of ReMiT weights"),
        "analyze shift": Stage("remit.report.shift", "ShiftConfig", "distribution shift between checkpoints",
                               positional="models"),
    }
    root = Path(__file__).resolve().parent.parent  # the folder holding the remit package
    for name, st in table.items():
        # Checked on disk, not imported, so that `remit --help` stays instant.
        if (root / (st.module.replace(".", "/") + ".py")).is_file():
            STAGES.setdefault(name, st)


def _usage() -> str:
    lines = ["usage: remit <stage> [--config FILE] [key=value ...] [--plugin MODULE]", "", "stages:"]
    for name, st in sorted(STAGES.items()):
        lines.append(f"  {name:<18} {st.help}")
    lines += ["", "remit <stage> --help lists the stage's config keys and defaults."]
    return "\n".join(lines)


def _field_help(cls: type, prefix: str = "") -> list[str]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += _field_help(tp, prefix + f.name + ".")
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = repr(f.default_factory())  # type: ignore[misc]
        else:
            default = "(required)"
        tname = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
        out.append(f"  {prefix + f.name:<34} {tname:<16} {default}")
    return out


def parse_args(argv: list[str], positional: str | None = None) -> tuple[str | None, list[str], list[str]]:
    """Split argv into (config file, overrides, positionals)."""
    config = None
    overrides: list[str] = []
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" or a == "-c":
            if i + 1 >= len(argv):
                raise RemitError("--config needs a file path")
            config = argv[i + 1]
            i += 2
            continue
        if a.startswith("--config="):
            config = a.split("=", 1)[1]
        elif a.startswith("--"):
            key = a[2:].replace("-", "_")
            if "=" in key:
                overrides.append(key)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--") and "=" not in argv[i + 1]:
                overrides.append(f"{key}={argv[i + 1]}")
                i += 1
            else:
                overrides.append(f"{key}=true")
        elif "=" in a:
            overrides.append(a)
        else:
            if positional is None:
                raise RemitError(f"unexpected argument '{a}': use key=value (or --config FILE)")
            positionals.append(a)
        i += 1
    return config, overrides, positionals


def run_stage(name: str, argv: list[str]):
    st = STAGES[name]
    mod = importlib.import_module(st.module)
    cls = getattr(mod, st.config)
    if any(a in ("-h", "--help") for a in argv):
        doc = (mod.__doc__ or "").strip()
        print(f"usage: remit {name} [--config FILE] [key=value ...]\n\n{doc}\n\nconfig keys (default):")
        print("\n".join(_field_help(cls)))
        return None
    config, overrides, positionals = parse_args(argv, st.positional)
    if positionals:
        overrides.append(f"{st.positional}=[{', '.join(repr(p) for p in positionals)}]")
    cfg = load_config(cls, config, overrides)
    return getattr(mod, st.run)(cfg)


def split_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """(plugin modules, the other arguments): ``--plugin M`` / ``--plugin=M`` may stand anywhere."""
    plugins, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--plugin":
            if i + 1 >= len(argv):
                raise RemitError("--plugin needs a module name (for example --plugin my_pkg.methods)")
            plugins.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--plugin="):
            plugins.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return plugins, rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        plugins, argv = split_plugins(argv)
        if plugins:
            load_plugins(plugins)
    except RemitError as e:
        print(f"remit: error: {e}", file=sys.stderr)
        return 2
    _load_stages()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(__version__)
        return 0
    name = argv[0]
    rest = argv[1:]
    if len(argv) > 1 and f"{argv[0]} {argv[1]}" in STAGES:
        name, rest = f"{argv[0]} {argv[1]}", argv[2:]
    if name not in STAGES:
        print(f"remit: unknown stage '{name}'.\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        out = run_stage(name, rest)
    except RemitError as e:
        print(f"remit {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"remit {name}: interrupted", file=sys.stderr)
        return 130
    if out is not None:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
