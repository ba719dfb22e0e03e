"""A torchrun worker of test_fsdp_options: FSDP2 training steps under each option, what each keeps.

    torchrun --standalone --nproc_per_node=2 tests/midtrain/fsdp_worker.py OUT_JSON TOKENIZER_DIR

For each option set, a fresh untied tiny Llama (same seed) is sharded by ``shard_fsdp`` and trained 3 steps
of 2 micro-batches by remit's ``Trainer``; rank 0 writes the losses, the FSDP units, and what the ranks
held between the two micro-batches of the first step: bytes of unsharded gradients (kept for the last
micro-batch's reduce-scatter) and bytes of sharded gradients (already reduce-scattered).
"""

from __future__ import annotations

import json
import sys

import torch

from remit.midtrain.config import OptimConfig
from remit.midtrain.distributed import init_world, shard_fsdp
from remit.midtrain.reference import PolicyLogps
from remit.midtrain.trainer import Trainer, build_optimizer
from remit.models import ModelConfig, load_tokenizer
from remit.objectives.base import NTP

OPTIONS = {"default": {}, "bf16": {"param_dtype": "bfloat16"}, "reduce_every": {"reduce_every_micro_batch": True}}


def _fsdp_params(policy):
    for m in policy.modules():
        state = getattr(m, "_get_fsdp_state", None)
        group = state()._fsdp_param_group if state else None
        yield from (group.fsdp_params if group else [])


def _held(policy) -> dict[str, int]:
    unsharded = sum(fp._unsharded_param.grad.numel() * fp._unsharded_param.grad.element_size()
                    for fp in _fsdp_params(policy)
                    if getattr(fp, "_unsharded_param", None) is not None and fp._unsharded_param.grad is not None)
    sharded = sum(fp.sharded_param.grad.to_local().numel() * fp.sharded_param.grad.element_size()
                  for fp in _fsdp_params(policy) if fp.sharded_param.grad is not None)
    return {"unsharded_grad_bytes": unsharded, "sharded_grad_bytes": sharded}


def run(tok, world, opts: dict) -> dict:
    model = ModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=4,
                        tie_word_embeddings=False).build(tok, seed=0)
    policy = shard_fsdp(PolicyLogps(model), param_dtype=opts.get("param_dtype", "float32"))
    optimizer = build_optimizer(policy, OptimConfig(lr=3e-3, eps=1e-4))
    seen: list[dict] = []
    ntp = NTP()

    def spy(inputs):  # called before each micro-batch's backward: after the first one's
        seen.append(_held(policy))
        return ntp(inputs)

    trainer = Trainer(policy, optimizer, spy, world=world, grad_clip=1.0,
                      reduce_every_micro_batch=opts.get("reduce_every_micro_batch", False))
    g = torch.Generator().manual_seed(0)
    losses = []
    ids = torch.randint(0, len(tok), (4, 17), generator=g)  # the global batch (the same each step), split over ranks
    for _ in range(3):
        mine = ids[world.rank * 2:(world.rank + 1) * 2]
        micro = [{"input_ids": mine[i:i + 1, :-1], "labels": mine[i:i + 1, 1:]} for i in range(2)]
        losses.append(trainer.step(micro, 3e-3)["loss"])
    units = sorted(type(m).__name__ for m in policy.modules() if hasattr(m, "_get_fsdp_state"))
    return {"losses": losses, "between_micro_batches": seen[1], "units": units}


def main(out: str, tokenizer: str) -> None:
    world = init_world("cpu", 120)
    tok = load_tokenizer(tokenizer)
    result = {name: run(tok, world, opts) for name, opts in OPTIONS.items()}
    if world.is_main:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
