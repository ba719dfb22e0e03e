"""The training loop shared by pre-training and every mid-training method.

:func:`train` builds everything from a :class:`MidtrainConfig` (``remit.midtrain.setup``), resumes from
the latest checkpoint when asked, logs, checkpoints atomically, stops on a NaN/inf loss naming the
step (the last good checkpoint is left untouched) and writes the final Hugging Face checkpoint.
One optimizer step is :class:`remit.midtrain.trainer.Trainer`'s; the loop only feeds it micro-batches.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from remit.config import save_config, to_dict
from remit.errors import ConfigError, TrainingError
from remit.manifest import is_complete, read_manifest, write_manifest
from remit.midtrain import checkpoint as ckpt
from remit.midtrain import sharded
from remit.midtrain.config import MidtrainConfig
from remit.midtrain.distributed import (
    World,
    barrier,
    check_shared,
    full_state,
    gather_objects,
    init_world,
    load_full_state,
)
from remit.midtrain.metrics import MetricsLogger, truncate_logs
from remit.midtrain.schedule import lr_multiplier
from remit.midtrain.setup import build_run, data_cache_dir
from remit.midtrain.trainer import NonFiniteLoss
from remit.models import param_count
from remit.utils.integrations import bf16_peak_flops
from remit.utils.io import atomic_dir, atomic_write_json
from remit.utils.lock import out_dir_lock

__all__ = ["train"]


def _prepare_out_dir(cfg: MidtrainConfig, world: World, stage: str) -> tuple[Path, Path | None]:
    out = Path(cfg.out_dir)
    root = out / "checkpoints"
    if world.is_main:  # what a kill during a save left behind
        ckpt.remove_stale_temps(root)
        ckpt.remove_stale_temps(out)
        ckpt.remove_stale_temps(out / "snapshots")
        if cfg.resume and not cfg.overwrite and read_manifest(out) is not None:
            # called only when out is not a finished output of this run: the manifest is a finished run of another
            # config or of re-made inputs, whose intermediate checkpoints resume=true must not continue
            print(f"[{stage}] {out} holds a finished run of another config or inputs: starting afresh (its "
                  f"checkpoints are not resumed)", flush=True)
            _clear(out)
    barrier(world)
    found = ckpt.latest(root)
    if found is not None and not cfg.resume and not cfg.overwrite:
        raise ConfigError(f"out_dir={out} holds checkpoints of an earlier run ({found.name}): pass resume=true "
                          f"(--resume) to continue it, overwrite=true to start afresh, or choose another out_dir")
    if cfg.overwrite and world.is_main:
        _clear(out)
    barrier(world)
    return out, (found if cfg.resume else None)


def _clear(out: Path) -> None:
    """Remove an earlier run's checkpoints, logs and manifest from ``out`` (its model files are replaced later)."""
    for name in ("checkpoints", "tb", "snapshots"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("metrics.jsonl", "manifest.json"):
        (out / name).unlink(missing_ok=True)


def _key_config(cfg: MidtrainConfig) -> MidtrainConfig:
    """The config that identifies the run's result (resume, overwrite, the timeout do not change it)."""
    return dataclasses.replace(cfg, resume=False, overwrite=False, dist_timeout_s=type(cfg).dist_timeout_s)


def train(cfg: MidtrainConfig, stage: str = "midtrain", record: Any = None, stop_after: int | None = None) -> Path:
    """Run (or resume) a training run and return its output folder (an HF checkpoint).

    ``stop_after``: stop after this optimizer step with a checkpoint and no final model (the schedule is
    still that of the whole run), as a killed run would; ``resume=true`` continues it.

    ``record``: the config saved as config.yaml / in the manifest (default ``cfg``; pre-training passes
    its PretrainConfig). Rank 0 holds the lock of ``out_dir`` for the whole run: a second run on the
    same folder fails at once (``remit.utils.lock``).
    """
    world = init_world(cfg.device, cfg.dist_timeout_s)
    with out_dir_lock(cfg.out_dir, stage, enabled=world.is_main):
        return _train(cfg, stage, record, world, stop_after)


def _train(cfg: MidtrainConfig, stage: str, record: Any, world: World, stop_after: int | None = None) -> Path:
    out = Path(cfg.out_dir)
    check_shared({"out_dir": out, "data.cache_dir": data_cache_dir(cfg, out)}, world)
    key = _key_config(record if record is not None else cfg)
    if is_complete(out, key) and not cfg.overwrite:
        return out
    t_start = time.time()
    out, resume_from = _prepare_out_dir(cfg, world, stage)
    run = build_run(cfg, world, out)
    trainer, iterator, total_steps, accum = run.trainer, run.iterator, run.total_steps, run.accum
    tokens_per_step = cfg.tokens_per_step
    snapshots = cfg.snapshot_steps()
    step = 0
    if resume_from is not None:
        step = _resume(run, cfg, world, resume_from)
    if world.is_main:  # the logs of a dead run past the checkpoint we continue from (or all, from scratch)
        truncate_logs(out, step)
        save_config(key, out / "config.yaml")
    peak, _ = bf16_peak_flops(world.device)
    logger = MetricsLogger(out, cfg.logging, enabled=world.is_main, total_steps=total_steps, start_step=step,
                           run_config=to_dict(key), flops_per_token=_flops_per_token(run.hf_model, cfg.data.seq_len),
                           peak_flops=peak * world.world_size if peak else None, device=world.device)
    start_step = step
    stop = total_steps if stop_after is None else min(stop_after, total_steps)
    logger.start_window(step * tokens_per_step)
    try:
        while step < stop:
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
            if step in snapshots:
                _snapshot(run, cfg, world, ckpt.snapshot_dir(out, snapshots[step]))
            if step < total_steps and (step == stop or cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                _save(run, cfg, world, out, step, tokens_per_step)
    finally:
        logger.close()
    sharded.wait(world)  # an asynchronous checkpoint still being written
    if step < total_steps:  # stopped early (stop_after): the checkpoint is the output
        return out
    _save_final(run, cfg, world, out)
    if world.is_main:
        wall = time.time() - t_start  # this invocation (a resumed run counts from its restart)
        trained = (total_steps - start_step) * tokens_per_step
        write_manifest(out, stage, key, inputs=run.inputs, steps=total_steps,
                       tokens=total_steps * tokens_per_step, world_size=world.world_size, wall_s=round(wall, 2),
                       tokens_per_s=round(trained / max(wall, 1e-9), 1), resumed_from_step=start_step, **run.extra)
    barrier(world)
    return out


def _flops_per_token(model, seq: int) -> float:
    """Training FLOPs per token: 6N (N without the input embedding) + 12 * layers * hidden * seq (PaLM's
    attention term), as benchmarks/gpu_check.py counts them."""
    c = model.config
    n = param_count(model) - model.get_input_embeddings().weight.numel()
    return 6.0 * n + 12.0 * c.num_hidden_layers * c.hidden_size * seq


def _resume(run, cfg: MidtrainConfig, world: World, path: Path) -> int:
    """Load checkpoint ``path`` (sharded or full) into the run; returns its global step.

    The same number of processes continues each rank's exact data state; another number continues at the
    same global step (the row order depends on the global batch only), each rank with the RNG state of
    rank ``rank % saved processes``.
    """
    if sharded.is_sharded(path):
        state = sharded.load(path, run.policy, run.optimizer, world)
    else:
        msd, osd, state = ckpt.load_checkpoint(path)
        load_full_state(run.policy, run.optimizer, msd, osd, world)
    step = int(state["step"])
    ckpt.set_rng_state(state["rng"][world.rank % len(state["rng"])])
    saved = state["data"][0]
    if state["world_size"] == world.world_size:
        run.iterator.load_state_dict(state["data"][world.rank])
        return step
    was = saved["micro_batch_size"] * saved["world_size"] * saved.get("accumulation", 1)
    mine = run.iterator.state_dict()
    for key, old, new in (("optim.batch_size", was, cfg.optim.batch_size), ("data", saved["fingerprint"],
                          mine["fingerprint"]), ("seed", saved["seed"], mine["seed"])):
        if old != new:
            raise ConfigError(f"cannot resume {path} on {world.world_size} processes: {key} was {old!r} when "
                              f"saved ({state['world_size']} processes), now {new!r}; restore it or start "
                              f"afresh with overwrite=true")
    run.iterator.seek(step)
    return step


def _save(run, cfg: MidtrainConfig, world: World, out: Path, step: int, tokens_per_step: int) -> None:
    rngs = gather_objects(ckpt.rng_state(), world)
    datas = gather_objects(run.iterator.state_dict(), world)
    state = {"tokens": step * tokens_per_step, "world_size": world.world_size, "rng": rngs, "data": datas}
    if cfg.parallel == "fsdp":  # every rank writes its shard
        sharded.save(out / "checkpoints", step, run.policy, run.optimizer, world, state, keep=cfg.keep_checkpoints,
                     asynchronous=cfg.checkpoint_async)
        return
    msd, osd = full_state(run.policy, run.optimizer, world)
    if world.is_main:
        ckpt.save_checkpoint(out / "checkpoints", step, msd, osd, state, keep=cfg.keep_checkpoints)
    barrier(world)


def _hf_state_dict(run, cfg: MidtrainConfig, world: World) -> dict | None:
    """The weights to save as an HF checkpoint (a collective under FSDP: gathered on rank 0, on CPU), in
    ``save_dtype``; None: the live model's own (fp32, not distributed)."""
    state_dict = None
    if cfg.parallel == "fsdp" and world.distributed:  # gathered on rank 0 (CPU), the model only
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        msd = get_model_state_dict(run.policy, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        state_dict = {k.removeprefix("model."): v for k, v in msd.items()}
    if world.is_main and cfg.save_dtype != "float32":
        dtype = getattr(torch, cfg.save_dtype)
        state_dict = {k: v.to(dtype) if v.is_floating_point() else v
                      for k, v in (state_dict or run.hf_model.state_dict()).items()}
    return state_dict


def _write_hf(run, cfg: MidtrainConfig, state_dict: dict | None, out: Path) -> None:
    """save_pretrained of the model and tokenizer into ``out`` (rank 0)."""
    model = run.hf_model
    if state_dict is not None:
        model.save_pretrained(out, state_dict=state_dict)
    else:
        model.save_pretrained(out)
    run.tokenizer.save_pretrained(out)
    if cfg.save_dtype != "float32":  # save_pretrained records the live model's dtype (fp32)
        conf = json.loads((out / "config.json").read_text(encoding="utf-8"))
        atomic_write_json(out / "config.json", {**conf, "dtype": cfg.save_dtype})


def _snapshot(run, cfg: MidtrainConfig, world: World, path: Path) -> None:
    """A weights-only HF snapshot (``snapshot_tokens``), written whole or not at all; kept if it exists (a
    resumed run passes the same step again with the same weights)."""
    state_dict = _hf_state_dict(run, cfg, world)
    if world.is_main and not path.is_dir():
        try:
            with atomic_dir(path) as tmp:
                _write_hf(run, cfg, state_dict, tmp)
        except (OSError, RuntimeError, SafetensorError) as e:
            raise TrainingError(f"writing the snapshot {path} failed: {ckpt.write_failure(e, path.parent)}; "
                                f"training stopped (resume=true continues from the last checkpoint)") from None
    barrier(world)


def _save_final(run, cfg: MidtrainConfig, world: World, out: Path) -> None:
    """save_pretrained of the policy (and tokenizer) into ``out``; the manifest, written after, marks completion."""
    state_dict = _hf_state_dict(run, cfg, world)
    if world.is_main:
        try:
            _write_hf(run, cfg, state_dict, out)
        except (OSError, RuntimeError, SafetensorError) as e:
            last = ckpt.latest(out / "checkpoints")
            keep = f"the last checkpoint {last} is intact (resume=true)" if last else "no checkpoint was kept"
            raise TrainingError(f"writing the final model into {out} failed: {ckpt.write_failure(e, out)}; "
                                f"{keep}") from None
    barrier(world)
