"""Sharded checkpoints for ``parallel=fsdp``: torch.distributed.checkpoint (DCP), each rank its own shard.

    <out_dir>/checkpoints/step-XXXXXXXX/dcp/    DCP's files: .metadata + one __<rank>_0.distcp per rank
    <out_dir>/checkpoints/step-XXXXXXXX/state.pt step, tokens, global batch, data identity, per-rank RNG

Every rank writes only the parameters and optimizer state it holds (no gather to rank 0, no full copy
in any host's memory) into a temp folder that rank 0 renames into place once ``state.pt`` is written,
so :func:`remit.midtrain.checkpoint.latest` only ever sees complete checkpoints. ``checkpoint_async=true``:
DCP's ``async_save`` (host copy, then a background thread), finished by the next save or the end of training. Resuming asks DCP for
the tensors of the CURRENT layout, so a checkpoint written by N processes resumes on M (one included:
DCP reads and joins the shards). The data position is the global optimizer step: remit's row order does
not depend on the number of processes (``BatchIterator.seek``).

``load_hf_state(path)`` reads a checkpoint's weights for the HF model in one process (learning curves of
intermediate checkpoints: ``model.load_state_dict(load_hf_state(ckpt))``), without the optimizer.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from remit.errors import TrainingError
from remit.midtrain.checkpoint import latest, list_checkpoints, write_failure
from remit.midtrain.distributed import World, barrier, broadcast_object, gather_objects
from remit.utils.io import fsync_tree

__all__ = ["save", "wait", "load", "load_hf_state", "is_sharded", "DCP"]

DCP = "dcp"  # the folder of DCP's files inside a checkpoint


def is_sharded(path: str | Path) -> bool:
    return (Path(path) / DCP).is_dir()


def _states(policy: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    msd, osd = get_state_dict(policy, optimizer)  # sharded (DTensor) under FSDP2, plain tensors on one process
    return {"model": msd, "optim": osd}


_PENDING: list[Any] = []  # this process's asynchronous save in flight: (future, finish)
_GROUP: list[Any] = []  # the gloo group of asynchronous saves (created once, by every rank)


def save(root: str | Path, step: int, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, world: World,
         state: dict[str, Any], keep: int = 2, asynchronous: bool = False) -> Path:
    """Write one sharded checkpoint (a collective: every rank calls it) and prune older ones (rank 0).

    ``asynchronous`` (``checkpoint_async``): DCP copies the shards to host memory and writes them in a
    background thread (its own gloo group, beside training's collectives); the checkpoint appears under
    its final name when :func:`wait` finishes it (the next save, or the end of training). One save at a time.
    """
    wait(world)
    root = Path(root)
    final = root / f"step-{step:08d}"
    tmp = root / broadcast_object(f".{final.name}.tmp-{os.getpid()}", world)  # rank 0's name, for all
    if world.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(world)
    finish = functools.partial(_finish, root, final, tmp, latest(root), world, {**state, "step": step, "format": DCP},
                               keep)
    try:
        if asynchronous:
            if world.distributed and not _GROUP:
                _GROUP.append(dist.new_group(backend="gloo"))
            future = dcp.async_save(_states(policy, optimizer), checkpoint_id=str(tmp / DCP),
                                    process_group=_GROUP[0] if _GROUP else None, no_dist=not world.distributed)
            _PENDING.append((future, finish))
            return final
        dcp.save(_states(policy, optimizer), checkpoint_id=str(tmp / DCP), no_dist=not world.distributed)
    except (OSError, RuntimeError) as e:
        return finish(write_failure(e, root))
    return finish(None)


def wait(world: World) -> None:
    """Finish the asynchronous save in flight, if any (every rank calls it)."""
    while _PENDING:
        future, finish = _PENDING.pop()
        try:
            future.result()
            error = None
        except (OSError, RuntimeError) as e:
            error = write_failure(e, Path(finish.args[0]))
        finish(error)


def _finish(root: Path, final: Path, tmp: Path, prev: Path | None, world: World, state: dict[str, Any], keep: int,
            error: str | None) -> Path:
    """Rank 0 writes ``state.pt`` last and renames the folder into place; a failure on any rank stops all."""
    if error is None and world.is_main:
        try:
            torch.save(state, tmp / "state.pt")
            fsync_tree(tmp)
        except (OSError, RuntimeError) as e:
            error = write_failure(e, root)
    errors = gather_objects(error, world)  # every rank stops, or none
    if any(errors):
        if world.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        keep_msg = f"the previous checkpoint {prev} is intact" if prev else "no earlier checkpoint exists"
        raise TrainingError(f"saving checkpoint {final} failed: {next(e for e in errors if e)}; {keep_msg} "
                            f"(free some space, then resume=true)")
    if world.is_main:
        if final.exists():  # the same step saved again after a resume
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(world)
    return final


def load(path: str | Path, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, world: World) -> dict:
    """Load a sharded checkpoint into this run's (possibly differently sharded) model and optimizer."""
    path = Path(path)
    states = _states(policy, optimizer)
    dcp.load(states, checkpoint_id=str(path / DCP), no_dist=not world.distributed)
    set_state_dict(policy, optimizer, model_state_dict=states["model"], optim_state_dict=states["optim"])
    return torch.load(path / "state.pt", map_location="cpu", weights_only=False)


def load_hf_state(path: str | Path, hf_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights of checkpoint ``path`` keyed for ``hf_model`` (read in this process only, no optimizer)."""
    want = {f"model.{k}": v.detach().clone() for k, v in hf_model.state_dict().items()}
    dcp.load({"model": want}, checkpoint_id=str(Path(path) / DCP), no_dist=True)
    return {k.removeprefix("model."): v for k, v in want.items()}
