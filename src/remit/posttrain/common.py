"""What the SFT, DPO and GRPO stages share: config fields, device defaults, TRL args, the run sequence.

A stage's config subclasses :class:`StageConfig`; the stage itself subclasses :class:`PosttrainStage`
and fills in only what is its own (its data, its TRL config and trainer, its manifest fields).
``PosttrainStage.run`` is the one sequence of every stage:

1. ``begin(cfg, name)`` checks the paths, and returns ``None`` when ``cfg.out`` already holds a
   finished output of the same config, model and data (the stage is then not re-run);
2. ``read``: the stage reads and checks its data (``remit.posttrain.data``), then the policy is
   loaded (``load_policy``: a tokenizer without a chat template is an error here, before any
   training step) and its held-out reward measured (``reward_before``);
3. ``prepare``: work with the loaded model before training (DPO samples its pairs here, and may
   skip training: the input model is then written forward unchanged);
4. ``build``: the TRL trainer, its config made by ``trl_args`` (device defaults, then the stage's
   values, then the ``trl:`` pass-through mapping, whose keys are checked against the TRL config class);
5. trains (TRL's checkpoints beside ``out``, so that ``resume=true`` continues a killed run), then rank 0
   calls ``finish`` with the stage's ``extras`` inside ``atomic_dir(out)`` (HF checkpoint + config.yaml +
   metrics.jsonl + manifest.json). Several processes (torchrun / accelerate launch): ``remit.posttrain.launch``.

Device defaults: fp32 master weights everywhere (``MASTER_DTYPE``); on CPU ``use_cpu=True``,
``bf16=False``, no gradient checkpointing; on GPU ``bf16=True``, i.e. bf16 autocast of the forward
over the fp32 weights, as mid-training does (vLLM generation for GRPO is decided in ``grpo.py``
through ``remit.utils.integrations``). Weights loaded in bf16 and updated in place by AdamW would
barely move at post-training learning rates: at lr 1e-6 one step changed 1.9% of bf16 weights
(100% in fp32; ``tests/posttrain/test_numerics.py``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit import sandbox
from remit.config import check_choice, check_range, save_config
from remit.errors import ConfigError, RemitError, TrainingError
from remit.manifest import is_complete, read_manifest, write_manifest
from remit.models import load_model, load_tokenizer
from remit.posttrain import launch
from remit.posttrain.data import RL_FIELDS, read_rows
from remit.posttrain.generate import check_reward, evaluate_rows, weighted_reward
from remit.utils.integrations import default_device, has_cuda
from remit.utils.io import atomic_dir, file_fingerprint

MASTER_DTYPE = "float32"  # the trained weights (and DPO's frozen reference) on every device


@dataclass
class RewardEvalConfig:
    """Held-out reward evaluation (greedy decoding) recorded in the manifest; ``n=0`` turns it off."""

    data: str = ""  # prompts with answers (eval.jsonl); "" = no evaluation
    n: int = 128
    max_new_tokens: int = 56
    rewards: list[str] = field(default_factory=lambda: ["world"])
    batch_size: int = 128

    def validate(self) -> None:
        check_range("eval.n", self.n, lo=0)
        check_range("eval.max_new_tokens", self.max_new_tokens, lo=1)
        check_range("eval.batch_size", self.batch_size, lo=1)
        if not self.rewards:
            raise ConfigError("eval.rewards: give at least one reward name (for example [world])")

    def enabled(self) -> bool:
        return bool(self.data) and self.n > 0


@dataclass
class StageConfig:
    """Fields every post-training stage has. ``model``/``data``/``out`` are filled by the chain."""

    model: str = ""  # input checkpoint: a local HF dir (a previous stage's output) or a hub id
    data: str = ""  # .jsonl file of the stage's rows
    out: str = ""  # output folder (HF checkpoint + config.yaml + manifest.json)
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    learning_rate: float = 1e-4
    max_steps: int = 20
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 256
    limit: int | None = None  # use only the first N rows of `data`
    logging_steps: int = 5
    trl: dict[str, Any] = field(default_factory=dict)  # extra TRL config fields, passed through as given
    eval: RewardEvalConfig = field(default_factory=RewardEvalConfig)
    sandbox_unenforced_ok: bool = False  # let code rewards run where the sandbox misses a kernel layer (warns)
    save_steps: int = 200  # optimizer steps between resumable TRL checkpoints (0: none; remit.posttrain.launch)
    resume: bool = False  # continue from the last checkpoint of an interrupted run of this stage

    def required_keys(self) -> tuple[str, ...]:
        """The keys a run cannot start without (a stage with another input drops ``data``)."""
        return ("model", "data", "out")

    def validate(self) -> None:
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_range("save_steps", self.save_steps, lo=0)
        check_range("learning_rate", self.learning_rate, lo=0.0, lo_open=True)
        for key in ("max_steps", "batch_size", "grad_accum", "max_length", "logging_steps"):
            check_range(key, getattr(self, key), lo=1)
        if self.limit is not None:
            check_range("limit", self.limit, lo=1)


def say(stage: str, msg: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:  # several processes: rank 0 speaks for all
        print(f"[remit {stage}] {msg}", file=sys.stderr, flush=True)


def result_config(cfg):
    """The config that identifies a stage's output (``resume`` does not change it)."""
    return dataclasses.replace(cfg, resume=False)


def resolve_device(device: str) -> str:
    if device == "auto":
        return default_device()
    if device == "cuda":
        if not has_cuda():
            raise ConfigError("device=cuda but no GPU is visible; use device=auto or device=cpu")
    return device


def device_args(device: str) -> dict[str, Any]:
    """TRL/TrainingArguments fields that must differ between CPU and GPU."""
    if device == "cpu":
        return dict(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False)
    return dict(use_cpu=False, bf16=True, fp16=False, gradient_checkpointing=False)


def stage_inputs(cfg: StageConfig) -> dict[str, Any]:
    """What the output depends on besides the config: the input model's manifest and the data bytes."""
    up = read_manifest(cfg.model) if Path(cfg.model).is_dir() else None
    inputs: dict[str, Any] = {
        "model": cfg.model,
        "model_config_hash": up.get("config_hash") if up else None,
        "model_finished_at": up.get("finished_at") if up else None,
        "data": cfg.data,
        "data_fingerprint": file_fingerprint(cfg.data) if Path(cfg.data).is_file() else None,
    }
    if cfg.eval.enabled() and Path(cfg.eval.data).is_file():
        inputs["eval_data_fingerprint"] = file_fingerprint(cfg.eval.data)
    return inputs


def begin(cfg: StageConfig, stage: str) -> dict[str, Any] | None:
    """Check the required paths; ``None`` if ``cfg.out`` is already a finished output of the same work."""
    for key in cfg.required_keys():
        if not getattr(cfg, key):
            raise ConfigError(f"{stage}: `{key}` is not set (give {key}=...)")
    inputs = stage_inputs(cfg)
    if cfg.eval.enabled():  # a bad held-out file or reward fails now, not after training
        check_reward(weighted_reward(cfg.eval.rewards), read_rows(cfg.eval.data, required=RL_FIELDS,
                                                                  limit=cfg.eval.n), cfg.eval.data)
    if is_complete(cfg.out, result_config(cfg)) and (read_manifest(cfg.out) or {}).get("inputs") == json.loads(
            json.dumps(inputs, default=str)):
        say(stage, f"{cfg.out} is already complete with the same config and inputs: not re-running")
        return None
    return inputs


def load_policy(path: str, device: str, stage: str):
    """(model, tokenizer) for training; the tokenizer must have a chat template and a pad token."""
    tokenizer = load_tokenizer(path)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{stage}: the tokenizer of model '{path}' has no chat template; post-training formats "
                          "prompts as chats (train the tokenizer with remit.models.train_tokenizer, or set "
                          "tokenizer.chat_template and save it)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(path, dtype=MASTER_DTYPE, device=device)
    return model, tokenizer


def trl_args(cls: type, stage: str, values: dict[str, Any], passthrough: dict[str, Any]):
    """Build the TRL config ``cls`` from remit's ``values`` then the user's ``trl:`` mapping."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in passthrough:
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names), n=1)
            hint = f" Did you mean 'trl.{close[0]}'?" if close else ""
            raise ConfigError(f"{stage}: trl.{key} is not a field of TRL's {cls.__name__}.{hint}")
    kwargs = {**values, **passthrough}
    # transformers >= 5.2x renamed gradient_checkpointing (TRL still defaults it to True): use the new name.
    if "activation_checkpointing" in names and "gradient_checkpointing" in values \
            and "gradient_checkpointing" not in passthrough:
        kwargs.setdefault("activation_checkpointing", kwargs.pop("gradient_checkpointing"))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{stage}: TRL rejected the training arguments: {e}") from None


def common_values(cfg: StageConfig, device: str, scratch: Path) -> dict[str, Any]:
    """TrainingArguments fields set the same way for every stage."""
    return dict(
        output_dir=str(scratch),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=launch.per_process(cfg.batch_size, "batch_size"),
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        **({"save_steps": cfg.save_steps, "save_total_limit": 1} if cfg.save_steps else {}),
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **device_args(device),
    )


def eval_settings(cfg: StageConfig) -> dict[str, Any]:
    e = cfg.eval
    return {"data": e.data, "n": e.n, "max_new_tokens": e.max_new_tokens, "rewards": list(e.rewards)}


def evaluate_in_memory(model, tokenizer, cfg: StageConfig) -> list[float]:
    """The held-out reward of every evaluated prompt (greedy), in file order."""
    rows = read_rows(cfg.eval.data, required=RL_FIELDS, limit=cfg.eval.n)
    return [float(v) for v in evaluate_rows(model, tokenizer, rows, list(cfg.eval.rewards),
                                            max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def reward_before(model, tokenizer, cfg: StageConfig) -> list[float] | None:
    """Held-out rewards of the input model: reused from its manifest when measured the same way."""
    if not cfg.eval.enabled():
        return None
    up = read_manifest(cfg.model) if Path(cfg.model).is_dir() else None
    prev = (up or {}).get("eval") or {}
    if prev.get("settings") == eval_settings(cfg) and prev.get("post_values") is not None:
        return [float(v) for v in prev["post_values"]]
    return evaluate_in_memory(model, tokenizer, cfg)


def check_finite(log_history: list[dict[str, Any]], stage: str) -> None:
    for rec in log_history:
        loss = rec.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(f"{stage}: loss became {loss} at step {rec.get('step')}; lower learning_rate")


def train(trainer, stage: str, resume_from: Path | None = None) -> list[dict[str, Any]]:
    """Run a TRL trainer (from checkpoint ``resume_from`` when given), refuse a non-finite loss; returns the
    log history (a resumed run's includes the steps before the checkpoint)."""
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    check_finite(trainer.state.log_history, stage)
    return trainer.state.log_history


def finish(tmp: Path, stage: str, cfg: StageConfig, inputs: dict[str, Any], model, tokenizer,
           log_history: list[dict[str, Any]] | None = None, *, pre: list[float] | None = None,
           started: float | None = None, **extra: Any) -> dict[str, Any]:
    """Write the checkpoint, config, metrics and manifest of a stage into ``tmp`` (its atomic_dir)."""
    post = evaluate_in_memory(model, tokenizer, cfg) if cfg.eval.enabled() else None
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_config(result_config(cfg), tmp / "config.yaml")
    log_history = log_history or []
    with open(tmp / "metrics.jsonl", "w", encoding="utf-8") as f:
        for rec in log_history:
            f.write(json.dumps(rec, default=float) + "\n")
    losses = [r["loss"] for r in log_history if "loss" in r]
    info: dict[str, Any] = {
        "steps": max((r.get("step", 0) for r in log_history), default=0),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "wall_s": round(time.time() - started, 2) if started else None,
        **extra,
    }
    if post is not None:
        # Per-prompt values (same prompts, same order) let reports pair the models prompt by prompt.
        info["eval"] = {"settings": eval_settings(cfg), "pre": None if pre is None else _mean(pre),
                        "post": _mean(post), "n": len(post), "pre_values": pre, "post_values": post}
        say(stage, f"held-out reward ({', '.join(cfg.eval.rewards)}, n={len(post)}): "
                   f"{'' if pre is None else f'{_mean(pre):.3f} -> '}{_mean(post):.3f}")
    write_manifest(tmp, stage, result_config(cfg), inputs=inputs, **info)
    return info


class PosttrainStage:
    """One post-training method; :meth:`run` is the sequence every stage shares (module docstring).

    A subclass sets ``name`` and fills in the hooks; what a hook reads or computes for a later one
    (rows, pairs, a reward function) it keeps on ``self``. ``self.device`` is set before ``prepare``.
    """

    name = ""

    def __init__(self, cfg: StageConfig):
        self.cfg = cfg
        self.device = ""
        self.world: Any = None  # remit.midtrain.distributed.World, set before ``read``

    def read(self) -> None:
        """Read and check the stage's data, before any model is loaded."""
        raise NotImplementedError

    def prepare(self, model, tokenizer) -> dict[str, Any] | None:
        """Work with the loaded input model before training. A dict means: do not train, write the input
        model forward with these manifest fields (DPO without pairs)."""
        return None

    def build(self, model, tokenizer, scratch: Path) -> tuple[Any, str]:
        """The TRL trainer (``scratch`` is its output_dir) and the line said before it trains."""
        raise NotImplementedError

    def extras(self, log_history: list[dict[str, Any]]) -> dict[str, Any]:
        """The stage's own manifest fields, after training."""
        return {}

    def run(self) -> Path:
        """The stage on this process; under torchrun / accelerate launch on every rank (``launch``)."""
        from remit.midtrain.distributed import barrier, init_world

        cfg, stage = self.cfg, self.name
        sandbox.configure(unenforced_ok=cfg.sandbox_unenforced_ok)
        self.world = init_world(resolve_device(cfg.device))  # cuda:<LOCAL_RANK> on several GPUs
        inputs = begin(cfg, stage)
        out = Path(cfg.out)
        if inputs is None:
            return out
        started = time.time()
        self.read()
        self.device = self.world.device
        resume_from = launch.resume_point(out, cfg.resume, stage)
        model, tokenizer = load_policy(cfg.model, self.device, stage)
        main = self.world.is_main
        pre = reward_before(model, tokenizer, cfg) if main else None
        skipped = self.prepare(model, tokenizer)
        extra, logs = skipped, []
        if skipped is None:
            trainer, summary = self.build(model, tokenizer, launch.scratch_dir(out))
            say(stage, summary + (f", resuming from {resume_from}" if resume_from else ""))
            logs = train(trainer, stage, resume_from)
            model = trainer.model
            extra = {**self.extras(logs), "resumed_from_step": _step_of(resume_from),
                     "processes": self.world.world_size}
        if main:
            with atomic_dir(out) as tmp:
                finish(tmp, stage, cfg, inputs, model, tokenizer, logs, pre=pre, started=started, **extra)
            launch.drop(out)
        barrier(self.world)  # the output is complete for every rank (the next stage's input)
        return out


def _step_of(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.removeprefix(launch.CHECKPOINT)) if checkpoint is not None else None


__all__ = ["PosttrainStage", "RewardEvalConfig", "StageConfig", "RemitError", "begin", "load_policy", "trl_args",
           "finish"]
