"""Sharded checkpoints for ``parallel=fsdp``: torch.distributed.checkpoint (DCP), each rank its own shard.

    <out_dir>/checkpoints/step-XXXXXXXX/dcp/    DCP's files: .metadata + one __<rank>_0.distcp per rank
    <out_dir>/checkpoints/step-XXXXXXXX/state.pt step, tokens, global batch, data identity, per-rank RNG

Every rank writes only the parameters and optimizer state it holds (no gather to rank 0, no full copy
in any host's memory) into a temp folder that rank 0 renames into place once ``state.pt`` is written,
so :func:`remit.midtrain.checkpoint.latest` only ever sees complete checkpoints. Resuming asks DCP for
the tensors of the CURRENT layout, so a checkpoint written by N processes resumes on M (one included:
DCP reads and joins the shards). The data position is the global optimizer step: remit's row order does
not depend on the number of processes (``BatchIterator.seek``).

``load_hf_state(path)`` reads a checkpoint's weights for the HF model in one process (learning curves of
intermediate checkpoints: ``model.load_state_dict(load_hf_state(ckpt))``), without the optimizer.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from remit.errors import TrainingError
from remit.midtrain.checkpoint import latest, list_checkpoints, write_failure
from remit.midtrain.distributed import World, barrier, broadcast_object, gather_objects
from remit.utils.io import fsync_tree

__all__ = ["save", "load", "load_hf_state", "is_sharded", "DCP"]

DCP = "dcp"  # the folder of DCP's files inside a checkpoint


def is_sharded(path: str | Path) -> bool:
    return (Path(path) / DCP).is_dir()


def _states(policy: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    msd, osd = get_state_dict(policy, optimizer)  # sharded (DTensor) under FSDP2, plain tensors on one process
    return {"model": msd, "optim": osd}


def save(root: str | Path, step: int, policy: torch.nn.Module, optimizer: torch.optim.Optimizer, world: World,
         state: dict[str, Any], keep: int = 2) -> Path:
    """Write one sharded checkpoint (a collective: every rank calls it) and prune older ones (rank 0)."""
    root = Path(root)
    final = root / f"step-{step:08d}"
    prev = latest(root)
    tmp = root / broadcast_object(f".{final.name}.tmp-{os.getpid()}", world)  # rank 0's name, for all
    error = None
    if world.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(world)
    try:
        dcp.save(_states(policy, optimizer), checkpoint_id=str(tmp / DCP), no_dist=not world.distributed)
        if world.is_main:
            torch.save({**state, "step": step, "format": DCP}, tmp / "state.pt")
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
