"""Process groups, DDP / FSDP2 wrapping and full state dicts for the engine.

One process: nothing to do. Under ``torchrun`` or ``accelerate launch`` (RANK / WORLD_SIZE set) the
engine initialises the default group (nccl on GPU, gloo on CPU) and wraps the trainable model:

* ``parallel=ddp``: ``DistributedDataParallel``; gradients are AVERAGED over ranks by DDP, so the
  engine multiplies them by ``world_size / global_denom`` once (the global-token-count contract).
* ``parallel=fsdp``: FSDP2 ``fully_shard`` on the embedding, every decoder layer, the LM head and the root
  (``fsdp.*``: mixed-precision policy; reduce-scatter every micro-batch or once per step); its
  reduce-scatter also averages, so the same scale applies. Checkpoints: ``remit.midtrain.sharded``.

The frozen reference is REPLICATED on every rank, never sharded: it runs in inference mode on the
rank's own micro-batch, needs no communication at all, and at the sizes ReMiT uses (the reference is
a model of the same size as the policy) a replica costs the memory of the policy's weights without
gradients or optimizer state (a quarter of the policy's footprint under AdamW). Sharding it would add
an all-gather per layer per micro-batch for no gain in the common case; a cached reference
(``remit score-reference``) is the answer when memory is tight.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from remit.errors import ConfigError
from remit.midtrain.perf import decoder_layers
from remit.utils.integrations import default_device

__all__ = ["World", "init_world", "wrap_model", "shard_fsdp", "all_reduce_sum", "barrier", "full_state", "load_full_state",
           "gather_objects", "check_shared"]


@dataclass
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_world(device: str | None = None, timeout_s: float | None = None) -> World:
    """Read torchrun's environment and set up the process group (idempotent).

    ``timeout_s`` (``dist_timeout_s`` of the configs): how long a collective waits for the slowest rank
    before the job fails (torch's default is 10 minutes; rank 0 building a data cache the others wait for
    takes longer: ``remit prepare-data`` beforehand, or a larger timeout).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = device or default_device()
    if device == "cuda" and world_size > 1:
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if world_size > 1 and not dist.is_initialized():
        timeout = timedelta(seconds=timeout_s) if timeout_s else None
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", timeout=timeout)
    return World(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def wrap_model(model: torch.nn.Module, world: World, parallel: str, fsdp: Any = None) -> torch.nn.Module:
    """DDP or FSDP2 around ``model`` (a module whose forward runs the whole policy) when distributed.

    ``fsdp``: the run's ``FSDPConfig`` (mixed-precision policy) for ``parallel=fsdp``.
    """
    if not world.distributed:
        return model
    if parallel == "fsdp":
        return shard_fsdp(model, param_dtype=getattr(fsdp, "param_dtype", "float32"),
                          reduce_dtype=getattr(fsdp, "reduce_dtype", "float32"))
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [torch.device(world.device).index] if world.device.startswith("cuda") else None
    return DDP(model, device_ids=ids)


def shard_fsdp(model: torch.nn.Module, param_dtype: str = "float32", reduce_dtype: str = "float32"
               ) -> torch.nn.Module:
    """FSDP2 ``fully_shard`` on the embedding, every decoder layer, the LM head, then the root.

    Needs an initialised process group. The embedding and the head are units of their own (each is
    gathered only around its own use, as in torchtitan), unless they share their weight (tied
    embeddings: they stay in the root unit). ``param_dtype`` / ``reduce_dtype``: FSDP2's
    ``MixedPrecisionPolicy`` (``bfloat16`` params: all-gathers and compute in bf16 over fp32 shards;
    ``float32`` reductions keep the gradient sums exact to fp32).
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    from remit.midtrain.reference import head_logps

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    mp = MixedPrecisionPolicy(param_dtype=dtypes[param_dtype], reduce_dtype=dtypes[reduce_dtype])
    hf = getattr(model, "model", model)
    emb, head = hf.get_input_embeddings(), hf.get_output_embeddings()
    own = head is not None and emb is not None and head.weight is not emb.weight
    if own:
        fully_shard(emb, mp_policy=mp)
    for layer in decoder_layers(model):
        fully_shard(layer, mp_policy=mp)
    if own:
        # PolicyLogps uses the head's weight directly (chunked log-probs, no logits): that call is its forward
        head.remit_logps = functools.partial(head_logps, head)
        fully_shard(head, mp_policy=mp)
        register_fsdp_forward_method(head, "remit_logps")
    fully_shard(model, mp_policy=mp)
    return model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def no_sync(model: torch.nn.Module, sync: bool):
    """Context that skips the gradient all-reduce of DDP / FSDP2 for all but the last micro-batch."""
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if not sync and hasattr(model, "no_sync"):  # DDP
        return model.no_sync()
    return contextlib.nullcontext()


def all_reduce_sum(t: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj`` (a picklable object), on every rank."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, world: World) -> Any:
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_shared(folders: dict[str, str | Path], world: World, wait_s: float = 5.0) -> None:
    """Stop every rank with one line naming the key when a folder is not one shared folder for all ranks.

    Rank 0 writes a probe file into each folder (``{config key: path}``); every rank looks for it (for up to
    ``wait_s`` seconds: a network filesystem may show a new file late). Rank 0 builds the data cache and
    writes checkpoints that the others read, so a node-local ``out_dir`` or ``data.cache_dir`` would
    otherwise show up later as a missing cache or a resume that finds nothing.
    """
    if not world.distributed:
        return
    probe = broadcast_object(f".remit-shared-{uuid.uuid4().hex[:12]}" if world.is_main else None, world)
    paths = {key: Path(p) / probe for key, p in folders.items()}
    if world.is_main:
        for p in paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(socket.gethostname(), encoding="utf-8")
    barrier(world)
    deadline = time.monotonic() + wait_s
    seen = {key: p.is_file() for key, p in paths.items()}
    while not all(seen.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = {key: p.is_file() for key, p in paths.items()}
    everyone = gather_objects((socket.gethostname(), seen), world)  # returns once every rank has looked
    if world.is_main:
        for p in paths.values():
            p.unlink(missing_ok=True)
    for key, folder in folders.items():
        blind = [f"rank {r} on {host}" for r, (host, s) in enumerate(everyone) if not s[key]]
        if blind:
            raise ConfigError(f"{key}={folder} is not shared by all processes: {', '.join(blind[:4])} cannot see "
                              f"the file rank 0 wrote there; put {key} on storage every node mounts at the same "
                              f"path (a shared filesystem)")


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, world: World) -> tuple[dict, dict]:
    """Full (unsharded, CPU) model and optimizer state dicts; meaningful on rank 0."""
    if not world.distributed:
        return ({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                _cpu(optimizer.state_dict()))
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(model, optimizer, options=opts)


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, msd: dict, osd: dict,
                    world: World) -> None:
    """Inverse of :func:`full_state` (every rank passes the same full dicts)."""
    if not world.distributed:
        model.load_state_dict(msd)
        optimizer.load_state_dict(osd)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(model, optimizer, model_state_dict=msd, optim_state_dict=osd,
                   options=StateDictOptions(full_state_dict=True))


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj
