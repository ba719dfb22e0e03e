"""``remit flywheel``: the whole ReMiT pipeline of method.md, stage after stage.

    remit flywheel                                  # the embedded default (offline, ~10 min on 2 CPU cores)
    remit flywheel --config configs/flywheel/default.yaml rounds=2 baselines=[rho1,kd]

Stages, each a folder of ``runs/<name>/`` with its own ``manifest.json``:

    world -> pretrain (P) -> midtrain-vanilla (B0) -> post-vanilla (SFT -> DPO -> GRPO = R0)
          -> midtrain-remit-r1 (P + reference R0 = B1) -> post-remit-r1 (R1) -> ... round k ...
          -> midtrain-<baseline> (P + R0, or the SFT model for sft_guided) [-> post-<baseline>]
          -> midtrain-<arm> [-> post-<arm>] for every extra arm (``arms``: from an arm's config + overrides)
          -> curve-<arm>-<tokens>-<suite> after each curve arm's mid-training (``curves``)
          -> eval-<model>-<suite> for every base and post-trained model (and <base>@chat: ``chat_evals``) -> report

The embedded default adds an A/A arm (``vanilla-aa``: vanilla with another packing seed, the report's noise
floor, named ``roles.vanilla_aa`` in the manifest), asks P, vanilla and ReMiT as chats, and scores the style
probe (``p_worked``, teacher-forced) on every chat evaluation of the world (``style_probe``).

Extra arms (``arms: [{name, from, overrides, posttrain, world, chat}]``) start from the mid-training config of
the arm named in ``from`` (same start checkpoint, reference, data order, schedule shape) with dotted
overrides (a budget arm: ``token_budget``; a placebo: ``method.name: remit_placebo``) and, with ``world``,
the ``midtrain.jsonl`` of the flywheel's world with those keys changed. Curves (``curves``): each curve
arm's mid-training writes weights-only snapshots at fixed token counts (``snapshot_tokens``); each is
scored by ``remit eval`` and deleted once scored; the manifest maps ``curves.<arm>.<tokens>.<suite>``.

Baselines are the arms of role ``baseline`` in the method table (``remit.methods``): ``sft_guided`` and
every method other than ntp and remit, a plugin's too (guided by R0 when it needs a reference); each
stage gets the keys of the ``midtrain.method`` section that its method reads.

A stage whose folder already holds a finished output made with the same config is reused, and
an interrupted mid-training resumes from its last checkpoint (``resume=true`` is always set), so
re-running the same command after a crash continues where it stopped. Every stage config is
built and validated before the first stage runs.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import build_config, config_hash, save_config, set_dotted
from remit.errors import ConfigError, RemitError
from remit.eval import run as ev
from remit.flywheel.config import ExtraArm, FlywheelConfig, deep_merge, extra_arms
from remit.flywheel.launch import LAUNCHED, launch_prefix, launched_runner
from remit.manifest import is_complete, read_manifest
from remit.methods.base import Arm
from remit.methods.registry import get_arm, get_method, remit_arm, vanilla_arm
from remit.midtrain.config import MidtrainConfig
from remit.posttrain import chain
from remit.utils.integrations import quiet_libraries
from remit.utils.io import atomic_write_json
from remit.world import stage as world_stage

__all__ = ["FlywheelConfig", "Stage", "plan", "run"]


@dataclass
class Stage:
    id: str  # folder name under runs/<name>/
    kind: str  # world | pretrain | midtrain | posttrain | eval | report
    config: Any  # the stage's own validated config
    runner: Callable[[Any], Path]
    label: str | None = None  # model label (vanilla, remit-r1, ...) for models and evals
    info: dict[str, Any] = field(default_factory=dict)


class _Planner:
    """Turns a FlywheelConfig into the ordered list of stage configs (no work done here)."""

    def __init__(self, cfg: FlywheelConfig):
        self.cfg = cfg
        self.root = Path(cfg.runs_dir) / cfg.name
        self.stages: list[Stage] = []
        self.world_dir = self.root / "world"
        self.mid: dict[str, tuple[dict[str, Any], Stage]] = {}  # label -> (its config as a mapping, its stage)
        self.pre = ""

    def add(self, stage: Stage) -> Stage:
        self.stages.append(stage)
        return stage

    def world(self) -> None:
        data = deep_merge({"seed": self.cfg.seed}, self.cfg.world)
        data["out_dir"] = str(self.world_dir)
        self.add(Stage("world", "world", build_config(world_stage.WorldConfig, data, "world"), world_stage.run))

    def _data(self, section: dict[str, Any], file: str) -> dict[str, Any]:
        sources = section.get("data", {}).get("sources")
        if self.cfg.use_world and not sources:
            return deep_merge(section, {"data": {"sources": [{"path": str(self.world_dir / file)}]}})
        if self.cfg.use_world and isinstance(sources, list):
            # "{world}/sft.jsonl": a file of this flywheel's world, wherever runs_dir and name put it
            sources = [{**s, "path": s["path"].replace("{world}", str(self.world_dir))}
                       if isinstance(s, dict) and isinstance(s.get("path"), str) else s for s in sources]
            return deep_merge(section, {"data": {"sources": sources}})
        return section

    def pretrain(self) -> str:
        from remit.midtrain import stage as mt  # imports torch: only when a flywheel is planned

        if self.cfg.start_checkpoint:
            return self.cfg.start_checkpoint

        data = self._data(deep_merge({"seed": self.cfg.seed}, self.cfg.pretrain), "pretrain.jsonl")
        data = deep_merge(data, {"out_dir": str(self.root / "pretrain"), "resume": True})
        st = self.add(Stage("pretrain", "pretrain", build_config(mt.PretrainConfig, data, "pretrain"), mt.run_pretrain,
                            label="pre-annealing"))
        return st.config.out_dir

    def method_section(self, arm: Arm) -> dict[str, Any]:
        """``method`` of an arm's stage: its name, plus the keys of the ``midtrain.method`` section it reads."""
        method = get_method(arm.method, key=f"baselines ({arm.name})")
        # midtrain.method's keys were checked by FlywheelConfig.validate
        return _method_keys(method.name, method, self.cfg.midtrain.get("method", {}))

    def midtrain(self, sid: str, arm: Arm, init: str, reference: str | None, rnd: int, label: str | None = None) -> str:
        label = label or arm.run_label
        data = self._data(deep_merge({"seed": self.cfg.seed}, self.cfg.midtrain), "midtrain.jsonl")
        method = self.method_section(arm)
        over: dict[str, Any] = {"out_dir": str(self.root / sid), "resume": True, "model": {"path": init}}
        if reference is not None:
            over["reference"] = {"path": reference}
        data = deep_merge(data, over)
        data["method"] = method  # replaced, not merged: an arm gets only the keys its method reads
        return self._add_midtrain(sid, label, data, f"midtrain ({sid})",
                                  {"method": method["name"], "arm": arm.name, "round": rnd, "reference": reference})

    def extra(self, i: int, spec: ExtraArm) -> str:
        """An extra arm (``arms[i]``): arm ``spec.base``'s mid-training config with ``spec.overrides``."""
        if spec.base not in self.mid:
            raise ConfigError(f"arms[{i}].from={spec.base!r} is not a mid-trained arm of this flywheel; its arms "
                              f"are: {', '.join(self.mid)}")
        if spec.name in self.mid or spec.name == "pre-annealing":
            raise ConfigError(f"arms[{i}].name={spec.name!r}: the flywheel already has an arm of that name")
        base, base_stage = self.mid[spec.base]
        data = copy.deepcopy(base)
        sid = f"midtrain-{spec.name}"
        data["out_dir"] = str(self.root / sid)
        if spec.world:
            data["data"] = {**data.get("data", {}), "sources": [{"path": str(self.arm_world(i, spec) / "midtrain.jsonl")}]}
        for key, value in spec.overrides.items():
            cur = data
            for part in key.split("."):
                cur = cur.get(part) if isinstance(cur, dict) else None
            if isinstance(value, dict) and isinstance(cur, dict):  # a section (optim: {lr: ...}) merges, key by key
                value = deep_merge(cur, value)
            set_dotted(data, key, value, MidtrainConfig, shown=f"arms[{i}].overrides.{key}")
        # the method section: the keys the (possibly new) method reads, from midtrain.method and the overrides
        name = data["method"].get("name", "ntp")
        method = get_method(name, key=f"arms[{i}].overrides.method.name")
        given = {**self.cfg.midtrain.get("method", {}), **data["method"]}
        asked = [k.split(".")[1] for k in spec.overrides if k.startswith("method.")]
        asked += list(spec.overrides["method"]) if isinstance(spec.overrides.get("method"), dict) else []
        for opt in asked:
            if opt not in ("name", "params", *method.options):
                raise ConfigError(f"arms[{i}].overrides.method.{opt}: method {name} does not read it (it reads: "
                                  f"{', '.join(method.options) or 'no options'})")
        data["method"] = _method_keys(name, method, given)
        info = {**base_stage.info, "method": name, "arm": spec.name, "from": spec.base,
                "overrides": dict(spec.overrides)}
        return self._add_midtrain(sid, spec.name, data, f"arms[{i}] ({spec.name})", info)

    def arm_world(self, i: int, spec: ExtraArm) -> Path:
        """The world of an arm's ``world`` keys: generated once per distinct set of keys, beside the flywheel's."""
        if not self.cfg.use_world:
            raise ConfigError(f"arms[{i}].world: needs the flywheel's world (use_world=true)")
        data = deep_merge(deep_merge({"seed": self.cfg.seed}, self.cfg.world), spec.world)
        probe = build_config(world_stage.WorldConfig, {**data, "out_dir": "x"}, f"arms[{i}].world")
        out = self.root / f"world-{config_hash(probe)[:8]}"
        if not any(st.kind == "world" and st.config.out_dir == str(out) for st in self.stages):
            cfg = build_config(world_stage.WorldConfig, {**data, "out_dir": str(out)}, f"arms[{i}].world")
            self.add(Stage(out.name, "world", cfg, world_stage.run))
        return out

    def _add_midtrain(self, sid: str, label: str, data: dict[str, Any], section: str, info: dict[str, Any]) -> str:
        from remit.midtrain import stage as mt  # imports torch: only when a flywheel is planned

        cfg = build_config(mt.MidtrainConfig, data, section)
        curve = self.cfg.curves
        if label in curve.arms:
            total = cfg.total_steps * cfg.tokens_per_step
            tokens = curve.tokens or [round(total * k / (curve.points - 1)) for k in range(1, curve.points - 1)]
            cfg = dataclasses.replace(cfg, snapshot_tokens=sorted({int(t) for t in tokens if 0 < t < total}))
        st = self.add(Stage(sid, "midtrain", cfg, mt.run, label=label, info=info))
        self.mid[label] = (data, st)
        if label in curve.arms:
            self.curve(label, cfg)
        return cfg.out_dir

    def curve(self, label: str, cfg) -> None:
        """Curve stages of arm ``label`` (mid-trained with ``cfg``): its snapshots scored by ``remit eval``
        (each deleted once scored), plus token 0 (the start) and the arm's end."""
        from remit.midtrain.checkpoint import snapshot_dir

        own = not self.cfg.curves.eval  # no curve overrides: the start and end points are the arms' own evals
        end = cfg.total_steps * cfg.tokens_per_step
        points = [(0, self.pre, None), *[(t, str(snapshot_dir(cfg.out_dir, t)), cfg.out_dir)
                                         for t in cfg.snapshot_steps().values()], (end, cfg.out_dir, None)]
        for tokens, model, snapshot_of in points:
            for suite in self.cfg.curves.suites or self.cfg.eval_suites:
                sid = f"curve-{label}-{tokens}-{suite}"
                # the same config and folder as the arm's own evaluation: whichever runs second is reused
                at = "pre-annealing" if tokens == 0 else label
                folder = f"eval-{at}-{suite}" if own and snapshot_of is None else \
                    (f"curve-pre-annealing-0-{suite}" if tokens == 0 else sid)
                ecfg = self.eval_config(model, suite, False, folder, {} if own else self.cfg.curves.eval)
                runner = ev.run if snapshot_of is None else functools.partial(_score_snapshot, model)
                self.add(Stage(sid, "curve", ecfg, runner, label=label,
                               info={"suite": suite, "tokens": tokens, "snapshot": snapshot_of is not None}))

    def posttrain(self, sid: str, label: str, model: str, rnd: int) -> dict[str, str]:
        data = deep_merge({"seed": self.cfg.seed}, self.cfg.posttrain)
        over = {"model": model, "out": str(self.root / sid), "resume": True}  # a killed stage continues
        if self.cfg.use_world and not data.get("data_dir"):
            over["data_dir"] = str(self.world_dir)
        cfg = build_config(chain.PosttrainConfig, deep_merge(data, over), f"posttrain ({sid})")
        self.add(Stage(sid, "posttrain", cfg, chain.run, label=label + "+post", info={"round": rnd}))
        outs = {name: str(Path(cfg.out) / name) for name in cfg.stages}
        outs["final"] = outs[cfg.stages[-1]] if cfg.stages else model
        return outs

    def eval_config(self, path: str, suite: str, chat: bool, folder: str, extra: dict[str, Any]) -> ev.EvalConfig:
        data = deep_merge(deep_merge({"seed": self.cfg.seed}, self.cfg.eval), self.cfg.suite_eval.get(suite) or {})
        data = deep_merge(data, extra)
        over: dict[str, Any] = {"model": path, "suite": suite, "chat": chat, "out_dir": str(self.root / folder)}
        if self.cfg.use_world and not data.get("world_dir"):
            over["world_dir"] = str(self.world_dir)
        if chat and suite == "world" and self.cfg.style_probe and not data.get("world_probe"):
            over.update(world_probe=True, world_probe_style_only=True)  # p_worked: teacher-forced, seconds
        if chat and "world_template" not in data:
            # A chat model is asked the question itself (as in post-training and its held-out reward),
            # not the pre-training "Question: ...\nAnswer:" page inside a user turn.
            over["world_template"] = "{prompt}"
        return build_config(ev.EvalConfig, deep_merge(data, over), f"eval ({folder})")

    def evals(self, models: dict[str, tuple[str, bool]]) -> None:
        for label, (path, chat) in models.items():
            for suite in self.cfg.eval_suites:
                sid = f"eval-{label}-{suite}"
                self.add(Stage(sid, "eval", self.eval_config(path, suite, chat, sid, {}), ev.run, label=label,
                               info={"suite": suite}))


def _method_keys(name: str, method, given: dict[str, Any]) -> dict[str, Any]:
    """An arm's ``method`` section: ``name`` plus the keys of ``given`` that the method reads (and its params)."""
    return {"name": name, **{k: v for k, v in given.items() if k in method.options},
            **({"params": given["params"]} if "params" in given and method.params else {})}


def _score_snapshot(snapshot: str, cfg: ev.EvalConfig) -> Path:
    """``remit eval`` of a mid-training snapshot, then the snapshot is deleted (a scored point is reused)."""
    if not is_complete(cfg.out_dir, cfg) and not Path(snapshot).is_dir():
        raise RemitError(f"{snapshot}: the snapshot to score is gone; delete its mid-training folder "
                         f"({Path(snapshot).parents[1]}) to train it again with its snapshots")
    out = ev.run(cfg)
    shutil.rmtree(snapshot, ignore_errors=True)
    return out


def plan(cfg: FlywheelConfig) -> list[Stage]:
    """Every stage of the flywheel, in order, with validated configs."""
    p = _Planner(cfg)
    if cfg.use_world:
        p.world()
    pre = p.pre = p.pretrain()
    bases: dict[str, str] = {"pre-annealing": pre}
    posts: dict[str, dict[str, str]] = {}
    vanilla = vanilla_arm()
    b0 = vanilla.run_label
    bases[b0] = p.midtrain(f"midtrain-{b0}", vanilla, pre, None, 0)
    posts[b0] = p.posttrain(f"post-{b0}", b0, bases[b0], 0)
    guides = {"rl": posts[b0]["final"], "sft": posts[b0].get("sft", posts[b0]["final"]), "none": None}
    ref = guides["rl"]
    rounds = remit_arm()
    for k in range(1, cfg.rounds + 1):
        label = f"{rounds.run_label}-r{k}"
        bases[label] = p.midtrain(f"midtrain-{label}", rounds, pre, ref, k, label=label)
        posts[label] = p.posttrain(f"post-{label}", label, bases[label], k)
        ref = posts[label]["final"]  # round k+1 is guided by this round's RL model
    for b in cfg.baselines:
        arm = get_arm(b)
        label = arm.run_label
        bases[label] = p.midtrain(f"midtrain-{label}", arm, pre, guides[arm.guide], 1)
        if cfg.posttrain_baselines:
            posts[label] = p.posttrain(f"post-{label}", label, bases[label], 1)
    chats = list(cfg.chat_evals)
    for i, spec in enumerate(extra_arms(cfg.arms)):
        bases[spec.name] = p.extra(i, spec)
        if spec.chat and spec.name not in chats:
            chats.append(spec.name)
        if spec.posttrain:
            posts[spec.name] = p.posttrain(f"post-{spec.name}", spec.name, bases[spec.name], p.mid[spec.name][1].info["round"])
    missing = [a for a in cfg.curves.arms if a not in p.mid]
    if missing:
        raise ConfigError(f"curves.arms: {missing[0]!r} is not a mid-trained arm of this flywheel; its arms are: "
                          f"{', '.join(p.mid)}")
    models = {label: (path, False) for label, path in bases.items()}
    for label in chats:
        if label not in bases:
            raise ConfigError(f"chat_evals: {label!r} is not a base model of this flywheel; its base models are: "
                              f"{', '.join(bases)}")
        models[f"{label}@chat"] = (bases[label], True)
    models.update({f"{label}+post": (outs["final"], True) for label, outs in posts.items()})
    p.evals(models)
    p.root.mkdir(parents=True, exist_ok=True)
    return p.stages


def _write_manifest(cfg: FlywheelConfig, stages: list[Stage], walls: dict[str, float], posts_sft: dict) -> Path:
    root = Path(cfg.runs_dir) / cfg.name
    doc: dict[str, Any] = {"name": cfg.name, "stages": {}, "models": {}, "evals": {}, "posttrain": posts_sft}
    for st in stages:
        out = _stage_out(st)
        doc["stages"][st.id] = {"path": out, "kind": st.kind, "label": st.label, "wall_s": walls.get(st.id),
                                "done": st.id in walls, **st.info}
        if st.kind in ("pretrain", "midtrain"):
            doc["models"][st.label] = out
        elif st.kind == "posttrain":
            doc["models"][st.label] = str(Path(out) / st.config.stages[-1]) if st.config.stages else st.config.model
        elif st.kind == "eval":
            doc["evals"].setdefault(st.label, {})[st.info["suite"]] = out
        elif st.kind == "curve":
            doc.setdefault("curves", {}).setdefault(st.label, {}).setdefault(str(st.info["tokens"]), {})[
                st.info["suite"]] = out
    if cfg.start_checkpoint:
        doc["models"].setdefault("pre-annealing", cfg.start_checkpoint)
    doc["roles"] = _roles(doc["models"], posts_sft)
    if (aa := _aa_label(stages, doc["roles"].get("vanilla"))) is not None:
        doc["roles"]["vanilla_aa"] = aa
    mid = [st for st in stages if st.kind == "midtrain"]
    if mid and mid[0].config.data.sources:
        path = mid[0].config.data.sources[0].path
        doc["data"] = {"midtrain": path, "probe": path}
    return atomic_write_json(root / "manifest.json", doc)


def _roles(models: dict[str, str], posts: dict[str, Any]) -> dict[str, str]:
    """Which label plays which part of method.md (P, B0, B1, SFT, R0, R1) for the report."""
    b0, b1 = vanilla_arm().run_label, f"{remit_arm().run_label}-r1"
    roles = {"pre_annealing": "pre-annealing", "vanilla": b0, "remit": b1,
             "rl": f"{b0}+post", "reference": f"{b0}+post", "remit_rl": f"{b1}+post"}
    roles = {k: v for k, v in roles.items() if v in models}
    sft = ((posts.get(f"{b0}+post") or {}).get("sft") or {}).get("out")
    if sft:
        models.setdefault(f"{b0}+sft", sft)
        roles["sft"] = f"{b0}+sft"
    return roles


# Keys in which an A/A arm may differ from vanilla: where it writes and the seeds of its data order.
_AA_KEYS = ("out_dir", "seed", "pack_seed")


def _aa_label(stages: list[Stage], vanilla: str | None) -> str | None:
    """The first extra arm that is vanilla again with only another data-order seed (the report's noise floor)."""
    mids = {st.label: st for st in stages if st.kind == "midtrain"}
    if vanilla not in mids:
        return None

    def strip(st: Stage) -> dict[str, Any]:
        d = dataclasses.asdict(st.config)
        d["data"] = {k: v for k, v in d["data"].items() if k not in _AA_KEYS}
        return {k: v for k, v in d.items() if k not in _AA_KEYS}

    ref = strip(mids[vanilla])
    for label, st in mids.items():
        cfg, base = st.config, mids[vanilla].config
        seeds_differ = (cfg.seed, cfg.data.pack_seed) != (base.seed, base.data.pack_seed)
        if label != vanilla and st.info.get("from") == vanilla and seeds_differ and strip(st) == ref:
            return label
    return None


def _stage_out(st: Stage) -> str:
    c = st.config
    return str(getattr(c, "out_dir", None) or getattr(c, "out", None))


def _eta(stages: list[Stage], walls: dict[str, float], fresh: set[str]) -> str:
    """Rough time left: each remaining stage costs what finished stages of its kind cost in this run
    (a mid-training with a reference ~1.4x a vanilla one: one extra forward pass)."""
    def cost_kind(st: Stage) -> str:
        return f"{st.kind}:{'ref' if st.info.get('reference') else 'plain'}" if st.kind == "midtrain" else st.kind

    seen: dict[str, list[float]] = {}
    for st in stages:
        if st.id in fresh:
            seen.setdefault(cost_kind(st), []).append(walls[st.id])
    if "midtrain:plain" in seen and "midtrain:ref" not in seen:
        seen["midtrain:ref"] = [1.4 * w for w in seen["midtrain:plain"]]
    left = 0.0
    for st in stages:
        if st.id in walls:
            continue
        known = seen.get(cost_kind(st))
        if not known:
            return "ETA: after the first stage of each kind"
        left += sum(known) / len(known)
    return f"ETA ~{_fmt(left)}"


def _fmt(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def run(cfg: FlywheelConfig) -> Path:
    from remit.report import build

    stages = plan(cfg)
    prefix = launch_prefix(cfg.launcher)
    if cfg.quiet:
        quiet_libraries()
    root = Path(cfg.runs_dir) / cfg.name
    # the report's keys checked now, not after an hour of training
    report_cfg = build_config(build.ReportConfig, {**cfg.report_options, "run_dir": str(root)}, "report_options")
    save_config(cfg, root / "config.yaml")
    walls: dict[str, float] = {}
    fresh: set[str] = set()  # stages run (not reused) in this invocation: their walls predict the rest
    post_info: dict[str, Any] = {}
    t_start = time.time()
    n = len(stages)
    print(f"[flywheel] {cfg.name}: {n} stages -> {root}", flush=True)
    for i, st in enumerate(stages, 1):
        out = _stage_out(st)
        before = (read_manifest(out) or {}).get("finished_at")
        print(f"[flywheel] [{i}/{n}] {st.id} ... (elapsed {_fmt(time.time() - t_start)}; "
              f"{_eta(stages, walls, fresh)})", flush=True)
        t0 = time.time()
        runner = st.runner
        if prefix and st.kind in LAUNCHED:
            runner = launched_runner(prefix, st.kind, st.id, root / "launch")
        runner(st.config)  # every stage skips itself when its output is finished with the same config
        m = read_manifest(out) or {}
        reused = before is not None and m.get("finished_at") == before
        walls[st.id] = float(m.get("wall_s") or 0.0) if reused else round(time.time() - t0, 2)
        if not reused:
            fresh.add(st.id)
        if st.kind == "posttrain":
            post_info[st.label] = m.get("stages")
        _write_manifest(cfg, stages, walls, post_info)
        print(f"[flywheel] [{i}/{n}] {st.id}: {'reused (finished earlier)' if reused else 'done in ' + _fmt(walls[st.id])}",
              flush=True)
    for st in stages:
        if st.kind == "posttrain" and st.label not in post_info:
            post_info[st.label] = (read_manifest(_stage_out(st)) or {}).get("stages")
    _write_manifest(cfg, stages, walls, post_info)
    table = "\n".join(f"  {sid:<34} {_fmt(w):>8}" for sid, w in walls.items())
    print(f"[flywheel] all {n} stages done in {_fmt(time.time() - t_start)}:\n{table}", flush=True)
    if cfg.report:
        report = build.run(report_cfg)
        loop = build.load_summary(root)["sections"].get("The loop, arrow by arrow") or {}
        if loop.get("lines"):  # the short version of the report's first section
            print("[flywheel] The loop, arrow by arrow (this run; details in the report):\n"
                  + "\n".join(f"  {line}" for line in loop["lines"]), flush=True)
        print(f"[flywheel] report: {report}", flush=True)
        return Path(report)
    return root
