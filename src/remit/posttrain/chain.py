"""The post-training chain: the configured stages in order (default SFT -> DPO -> GRPO).

    remit posttrain model=runs/x/midtrain data_dir=runs/x/world out=runs/x/post
    remit posttrain --config configs/posttrain/default.yaml model=... data_dir=... out=...

Each stage's output folder is ``out/<stage>`` and is the next stage's input model. The paths
in the stage sections (``sft.model``, ``sft.data``, ``grpo.eval.data``, ...) are filled in here
unless set: data from ``data_dir`` (``sft.jsonl`` for SFT, ``rl.jsonl`` for DPO and GRPO,
``eval.jsonl`` for the held-out reward) or from ``sft_data`` / ``rl_data`` / ``eval_data``.
``device`` and ``seed`` apply to every stage. A stage already finished with the same config
and inputs is not re-run. ``out/manifest.json`` lists the stage outputs, their wall times and
held-out rewards; ``run`` returns the last stage's folder (the post-trained model).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_choice
from remit.errors import ConfigError
from remit.manifest import is_complete, read_manifest, write_manifest
from remit.posttrain import dpo, grpo, sft
from remit.posttrain.dpo import DPOStageConfig
from remit.posttrain.grpo import GRPOStageConfig
from remit.posttrain.sft import SFTStageConfig
from remit.utils.lock import locks_out_dir

STAGES = ("sft", "dpo", "grpo")


def barrier_all() -> None:
    """Several processes (the stages set the group up): wait for rank 0's writes."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@dataclass
class PosttrainConfig:
    model: str = ""  # the model to post-train (HF dir or hub id)
    out: str = ""  # output folder; stage outputs go to out/<stage>
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    data_dir: str = ""  # folder with sft.jsonl, rl.jsonl, eval.jsonl (the world's output)
    sft_data: str = ""  # overrides data_dir/sft.jsonl
    rl_data: str = ""  # overrides data_dir/rl.jsonl
    eval_data: str = ""  # overrides data_dir/eval.jsonl; "none" = no held-out reward evaluation
    device: str = "auto"
    seed: int = 0
    resume: bool = False  # every stage continues from its last checkpoint (an interrupted run)
    sft: SFTStageConfig = field(default_factory=SFTStageConfig)
    dpo: DPOStageConfig = field(default_factory=DPOStageConfig)
    grpo: GRPOStageConfig = field(default_factory=GRPOStageConfig)

    def validate(self) -> None:
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        if not self.stages:
            raise ConfigError("stages: give at least one of " + ", ".join(STAGES))
        for s in self.stages:
            check_choice("stages[]", s, STAGES)
        if len(set(self.stages)) != len(self.stages):
            raise ConfigError(f"stages: {self.stages} lists a stage twice")


def _data(cfg: PosttrainConfig, explicit: str, name: str) -> str:
    if explicit:
        return explicit
    return str(Path(cfg.data_dir) / name) if cfg.data_dir else ""


def stage_configs(cfg: PosttrainConfig) -> list[tuple[str, Any]]:
    """The stage configs with their paths filled in (input model = previous stage's output)."""
    if not cfg.model:
        raise ConfigError("posttrain: `model` is not set (give model=PATH)")
    if not cfg.out:
        raise ConfigError("posttrain: `out` is not set (give out=DIR)")
    data = {"sft": _data(cfg, cfg.sft_data, "sft.jsonl"), "dpo": _data(cfg, cfg.rl_data, "rl.jsonl"),
            "grpo": _data(cfg, cfg.rl_data, "rl.jsonl")}
    eval_data = "" if cfg.eval_data == "none" else _data(cfg, cfg.eval_data, "eval.jsonl")
    prev = cfg.model
    out = []
    for name in cfg.stages:
        sc = copy.deepcopy(getattr(cfg, name))
        sc.model = sc.model or prev
        sc.data = sc.data or data[name]
        sc.out = sc.out or str(Path(cfg.out) / name)
        sc.device = cfg.device if sc.device == "auto" else sc.device
        sc.seed = cfg.seed + sc.seed
        sc.resume = sc.resume or cfg.resume
        if not sc.eval.data and eval_data and Path(eval_data).is_file():
            sc.eval.data = eval_data
        if not sc.data:
            raise ConfigError(f"posttrain: no data for stage '{name}': set data_dir (with "
                              f"{'sft.jsonl' if name == 'sft' else 'rl.jsonl'}) or {name}.data")
        out.append((name, sc))
        prev = sc.out
    return out


@locks_out_dir("out", "posttrain", create=True, main_only=True)
def run(cfg: PosttrainConfig) -> Path:
    runners = {"sft": sft.run, "dpo": dpo.run, "grpo": grpo.run}
    plan = stage_configs(cfg)
    summary: dict[str, Any] = {}
    last = Path(cfg.model)
    started = time.time()
    for name, sc in plan:
        t0 = time.time()
        last = runners[name](sc)
        m = read_manifest(last) or {}
        summary[name] = {"out": str(last), "wall_s": round(time.time() - t0, 2), "eval": m.get("eval"),
                         "skipped": m.get("skipped", False), "finished_at": m.get("finished_at")}
        if name == "dpo":
            summary[name]["pairs"] = (m.get("pairs") or {}).get("pairs")
    old = read_manifest(cfg.out) or {}
    key = dataclasses.replace(cfg, resume=False)
    unchanged = is_complete(cfg.out, key) and all(
        (old.get("stages") or {}).get(n, {}).get("finished_at") == s["finished_at"] for n, s in summary.items())
    # every stage reused: the chain's manifest (and its wall time) stays as it was; rank 0 writes it
    if not unchanged and int(os.environ.get("RANK", "0")) == 0:
        write_manifest(cfg.out, "posttrain", key, inputs={"model": cfg.model, "data_dir": cfg.data_dir},
                       stages=summary, final=str(last), wall_s=round(time.time() - started, 2))
    barrier_all()  # several processes: the chain's manifest is there for every rank
    return last
