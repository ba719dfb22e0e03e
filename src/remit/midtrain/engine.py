"""The training loop shared by pre-training and every mid-training method.

:class:`Trainer` runs ONE optimizer step over a list of micro-batches under the global-token-count
contract (docs/ARCHITECTURE.md): each micro-batch backpropagates its objective's ``loss_sum``; the
denominators are summed over micro-batches and ranks (one all-reduce) and the gradients are scaled
once by ``world_size / global_denom`` (DDP / FSDP2 average over ranks) before clipping and AdamW.
So 1 x 8 and 8 x 1 micro-batches, or 1 and 2 processes, give the same update.

:func:`train` builds everything from a :class:`MidtrainConfig` (``remit.midtrain.setup``), resumes from
the latest checkpoint when asked, logs, checkpoints atomically, stops on a NaN/inf loss naming the
step (the last good checkpoint is left untouched) and writes the final Hugging Face checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from remit.errors import ConfigError, TrainingError
from remit.midtrain import checkpoint as ckpt
from remit.midtrain.config import MidtrainConfig
from remit.midtrain.distributed import (
    World,
    all_reduce_sum,
    barrier,
    full_state,
    gather_objects,
    init_world,
    load_full_state,
    no_sync,
)
from remit.midtrain.metrics import MetricsLogger, WeightStats, truncate_logs
from remit.midtrain.schedule import lr_multiplier
from remit.utils.lock import out_dir_lock

__all__ = ["Trainer", "train", "NonFiniteLoss", "build_optimizer"]


class NonFiniteLoss(Exception):
    def __init__(self, what: str, value: float):
        super().__init__(f"{what} is {value}")
        self.what, self.value = what, value


def build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """AdamW; no weight decay on vectors (norms, biases)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


class Trainer:
    """One optimizer step: forward/backward per micro-batch, global denominator, scale, clip, AdamW."""

    def __init__(self, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, objective, *, world: World,
                 reference=None, base=None, grad_clip: float = 0.0, autocast_dtype: torch.dtype | None = None,
                 epsilon: float = 0.2):
        self.policy, self.optimizer, self.objective = policy, optimizer, objective
        self.world, self.reference, self.base = world, reference, base
        self.grad_clip, self.autocast_dtype = grad_clip, autocast_dtype
        self.needs = getattr(objective, "needs", "none")
        self.weights = WeightStats(epsilon)
        self.extra = torch.zeros(2, dtype=torch.float64)  # rho1: kept, counted
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def _autocast(self, device: torch.device):
        if self.autocast_dtype is None or device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.autocast_dtype)

    def step(self, micro_batches: list[dict[str, torch.Tensor]], lr: float, *, collect_stats: bool = False
             ) -> dict[str, float]:
        from remit.objectives import ObjectiveInputs

        for g in self.optimizer.param_groups:
            g["lr"] = lr
        device = torch.device(self.world.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        denom = torch.zeros((), dtype=torch.float64, device=device)
        nll_sum = torch.zeros((), dtype=torch.float64, device=device)  # plain NTP loss, comparable across methods
        n_tokens = torch.zeros((), dtype=torch.float64, device=device)
        last = len(micro_batches) - 1
        for i, mb in enumerate(micro_batches):
            mb = {k: v.to(device, non_blocking=True) for k, v in mb.items()}
            mask = mb["labels"] != -100
            ref_logps = ref_logits = base_logps = None
            if self.needs != "none":
                ref_logps, ref_logits = self.reference(mb)
            if self.base is not None:
                base_logps, _ = self.base(mb)
            with no_sync(self.policy, sync=(i == last)):
                with self._autocast(device):
                    logps, logits = self.policy(mb["input_ids"], mb["labels"])
                out = self.objective(ObjectiveInputs(
                    policy_logps=logps, mask=mask, ref_logps=ref_logps, base_logps=base_logps,
                    doc_ids=mb.get("doc_ids"), policy_logits=logits, ref_logits=ref_logits))
                out.loss_sum.backward()
            loss_sum += out.loss_sum.detach().double()
            denom += out.denom.detach().double()
            nll_sum -= (logps.detach().double() * mask).sum()
            n_tokens += mask.sum()
            if collect_stats:
                self._collect(out.stats, mask)
        totals = all_reduce_sum(torch.stack([loss_sum, denom, nll_sum, n_tokens]), self.world)
        total_denom = float(totals[1])
        loss = float(totals[0]) / total_denom if total_denom > 0 else 0.0
        nll = float(totals[2]) / float(totals[3]) if float(totals[3]) > 0 else 0.0
        if not math.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLoss("the loss", loss)
        grad_norm = 0.0
        if total_denom > 0:
            scale = self.world.world_size / total_denom
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(scale)
            max_norm = self.grad_clip if self.grad_clip > 0 else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
            if hasattr(norm, "full_tensor"):  # FSDP2 DTensor
                norm = norm.full_tensor()
            grad_norm = float(norm)
            if not math.isfinite(grad_norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLoss("the gradient norm", grad_norm)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss, "nll": nll, "denom": total_denom, "grad_norm": grad_norm}

    def _collect(self, stats: dict[str, torch.Tensor], mask: torch.Tensor) -> None:
        if "weights" in stats:
            self.weights.add(stats, mask)
        if "keep_mask" in stats:
            self.extra += torch.tensor([float(stats["keep_mask"].sum()), float(mask.sum())], dtype=torch.float64)

    def pop_stats(self) -> dict[str, Any]:
        """Step statistics summed over ranks since the last call."""
        vec = all_reduce_sum(torch.cat([self.weights.vec, self.extra]).to(self.world.device), self.world).cpu()
        self.weights.vec.copy_(vec[: len(self.weights.vec)])
        out = self.weights.summary()
        kept, counted = vec[len(self.weights.vec):].tolist()
        if counted > 0:
            out["kept_fraction"] = kept / counted
        self.weights.reset()
        self.extra.zero_()
        return out


def _prepare_out_dir(cfg: MidtrainConfig, world: World) -> tuple[Path, Path | None]:
    out = Path(cfg.out_dir)
    root = out / "checkpoints"
    if world.is_main:  # what a kill during a save left behind
        ckpt.remove_stale_temps(root)
        ckpt.remove_stale_temps(out)
    found = ckpt.latest(root)
    if found is not None and not cfg.resume and not cfg.overwrite:
        raise ConfigError(f"out_dir={out} holds checkpoints of an earlier run ({found.name}): pass resume=true "
                          f"(--resume) to continue it, overwrite=true to start afresh, or choose another out_dir")
    if cfg.overwrite and world.is_main:
        for name in ("checkpoints", "tb"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("metrics.jsonl", "manifest.json"):
            (out / name).unlink(missing_ok=True)
    barrier(world)
    return out, (found if cfg.resume else None)


def _key_config(cfg: MidtrainConfig) -> MidtrainConfig:
    """The config that identifies the run's result (resume / overwrite do not change it)."""
    return dataclasses.replace(cfg, resume=False, overwrite=False)


def train(cfg: MidtrainConfig, stage: str = "midtrain", record: Any = None) -> Path:
    """Run (or resume) a training run and return its output folder (an HF checkpoint).

    ``record``: the config saved as config.yaml / in the manifest (default ``cfg``; pre-training passes
    its PretrainConfig). Rank 0 holds the lock of ``out_dir`` for the whole run: a second run on the
    same folder fails at once (``remit.utils.lock``).
    """
    world = init_world(cfg.device)
    with out_dir_lock(cfg.out_dir, stage, enabled=world.is_main):
        return _train(cfg, stage, record, world)


def _train(cfg: MidtrainConfig, stage: str, record: Any, world: World) -> Path:
    from remit.config import save_config
    from remit.midtrain.setup import build_run
    from remit.utils.io import is_complete, write_manifest

    out = Path(cfg.out_dir)
    key = _key_config(record if record is not None else cfg)
    if is_complete(out, key) and not cfg.overwrite:
        return out
    t_start = time.time()
    out, resume_from = _prepare_out_dir(cfg, world)
    run = build_run(cfg, world, out)
    trainer, iterator, total_steps, accum = run.trainer, run.iterator, run.total_steps, run.accum
    tokens_per_step = cfg.optim.batch_size * cfg.data.seq_len
    step = 0
    if resume_from is not None:
        msd, osd, state = ckpt.load_checkpoint(resume_from)
        if state["world_size"] != world.world_size:
            raise ConfigError(f"cannot resume {resume_from}: it was saved with {state['world_size']} processes, "
                              f"this run has {world.world_size}")
        load_full_state(run.policy, run.optimizer, msd, osd, world)
        ckpt.set_rng_state(state["rng"][world.rank])
        iterator.load_state_dict(state["data"][world.rank])
        step = int(state["step"])
    if world.is_main:  # the logs of a dead run past the checkpoint we continue from (or all, from scratch)
        truncate_logs(out, step)
        save_config(key, out / "config.yaml")
    logger = MetricsLogger(out, cfg.logging, enabled=world.is_main, total_steps=total_steps, start_step=step,
                           run_config=_as_dict(key))
    start_step = step
    logger.start_window(step * tokens_per_step)
    try:
        while step < total_steps:
            micro = [next(iterator) for _ in range(accum)]
            lr = cfg.optim.lr * lr_multiplier(step, total_steps, cfg.schedule)
            log_now = (step + 1) % cfg.logging.every == 0 or step + 1 == total_steps
            try:
                res = trainer.step(micro, lr, collect_stats=log_now)
            except NonFiniteLoss as e:
                last = ckpt.latest(out / "checkpoints")
                keep = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
                raise TrainingError(f"step {step + 1}: {e} (lr {lr:.3g}); training stopped, {keep}") from None
            step += 1
            if log_now:
                record = {"step": step, "tokens": step * tokens_per_step, "loss": res["loss"], "nll": res["nll"], "lr": lr,
                          "grad_norm": res["grad_norm"], **trainer.pop_stats()}
                logger.log(record)
            logger.advance()
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total_steps:
                _save(run, cfg, world, out, step, tokens_per_step)
    finally:
        logger.close()
    _save_final(run, cfg, world, out)
    if world.is_main:
        wall = time.time() - t_start  # this invocation (a resumed run counts from its restart)
        trained = (total_steps - start_step) * tokens_per_step
        write_manifest(out, stage, key, inputs=run.inputs, steps=total_steps,
                       tokens=total_steps * tokens_per_step, world_size=world.world_size, wall_s=round(wall, 2),
                       tokens_per_s=round(trained / max(wall, 1e-9), 1), **run.extra)
    barrier(world)
    return out


def _as_dict(cfg) -> dict:
    from remit.config import to_dict

    return to_dict(cfg)


def _save(run, cfg: MidtrainConfig, world: World, out: Path, step: int, tokens_per_step: int) -> None:
    msd, osd = full_state(run.policy, run.optimizer, world)
    rngs = gather_objects(ckpt.rng_state(), world)
    datas = gather_objects(run.iterator.state_dict(), world)
    if world.is_main:
        state = {"tokens": step * tokens_per_step, "world_size": world.world_size, "rng": rngs, "data": datas}
        ckpt.save_checkpoint(out / "checkpoints", step, msd, osd, state, keep=cfg.keep_checkpoints)
    barrier(world)


def _save_final(run, cfg: MidtrainConfig, world: World, out: Path) -> None:
    """save_pretrained of the policy (and tokenizer) into ``out``; the manifest, written after, marks completion."""
    from safetensors import SafetensorError

    if cfg.parallel == "fsdp" and world.distributed:
        msd, _ = full_state(run.policy, run.optimizer, world)
        state_dict = {k.removeprefix("model."): v for k, v in msd.items()}
    else:
        state_dict = None
    if world.is_main:
        model = run.hf_model
        try:
            if state_dict is not None:
                model.save_pretrained(out, state_dict=state_dict)
            else:
                model.save_pretrained(out)
            run.tokenizer.save_pretrained(out)
        except (OSError, RuntimeError, SafetensorError) as e:
            last = ckpt.latest(out / "checkpoints")
            keep = f"the last checkpoint {last} is intact (resume=true)" if last else "no checkpoint was kept"
            raise TrainingError(f"writing the final model into {out} failed: {ckpt.write_failure(e, out)}; "
                                f"{keep}") from None
    barrier(world)
