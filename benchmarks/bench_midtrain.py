"""Step time of the mid-training engine: vanilla vs ReMiT (online / cached) vs RHO-1, and vs closed-loop-training.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_midtrain.py            # writes benchmarks/results/midtrain.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_midtrain.py --steps 20 --batch 4

A ~5M-parameter Llama (hidden 256, 4 layers, vocab 4096), seq 256, fp32 on CPU. Every variant is a full
optimizer step of ``remit.midtrain.trainer.Trainer`` (forward, objective, backward, AdamW) on the SAME
batches; variants are interleaved step by step in one process and the median of ``--steps`` timed steps
after warm-up is reported, so machine-load drift hits all of them alike.

Third-party comparison: ``closed-loop-training==0.4.0`` (``pip install 'remit[bench]'``), its
``closed_loop.remit.remit_core.RemitLoss(base_logits, ref_logits, token_ids)``: it needs the full
[B, T, V] logits of both models (HF forward), computes the weights from them and returns the mean of
w * NLL. We run it in the same step skeleton (reference forward under no_grad, AdamW). Peak memory
is measured per variant in a fresh subprocess (Linux VmHWM after resetting it with /proc/self/clear_refs),
above the memory held before the first step.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from memory import in_subprocess, peak_above_start  # noqa: E402

VOCAB, HIDDEN, LAYERS, HEADS = 4096, 256, 4, 4


def build(batch: int, seq: int, n_batches: int):
    from remit.models import tiny_model

    policy = tiny_model("llama", vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=LAYERS, num_heads=HEADS, seed=0)
    ref = tiny_model("llama", vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=LAYERS, num_heads=HEADS, seed=1)
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(n_batches):
        toks = torch.randint(0, VOCAB, (batch, seq + 1), generator=g)
        batches.append({"input_ids": toks[:, :-1], "labels": toks[:, 1:].clone(),
                        "doc_ids": torch.zeros(batch, seq, dtype=torch.long),
                        "row_index": torch.arange(i * batch, (i + 1) * batch)})
    return policy, ref, batches


def write_cache(ref, batches, path: Path) -> Path:
    """A real score-reference style cache (fp32 .npy shards) for the benchmark rows."""
    from remit.midtrain.reference import OnlineReference, write_rows_cache

    online = OnlineReference(copy.deepcopy(ref))
    return write_rows_cache(path, np.concatenate([online(b)[0].numpy() for b in batches]))


class CLTStep:
    """closed-loop-training's RemitLoss in the same step skeleton (full logits of policy and reference)."""

    def __init__(self, policy, ref, lr: float):
        from closed_loop.remit.remit_core import RemitLoss, RemitReweighter

        self.policy, self.ref = policy, ref.eval()
        self.loss = RemitLoss(RemitReweighter(clip_epsilon=0.2))
        self.opt = torch.optim.AdamW(policy.parameters(), lr=lr)

    def step(self, micro, lr):
        mb = micro[0]
        with torch.no_grad():
            ref_logits = self.ref(input_ids=mb["input_ids"]).logits
        logits = self.policy(input_ids=mb["input_ids"]).logits
        loss, _ = self.loss(logits, ref_logits, mb["labels"])
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return {"loss": float(loss.detach())}


def make_variants(policy, ref, cache_dir: Path, lr: float, names: list[str]):
    from remit.midtrain.config import OptimConfig
    from remit.midtrain.distributed import World
    from remit.midtrain.reference import CachedReference, OnlineReference, PolicyLogps
    from remit.midtrain.trainer import Trainer, build_optimizer
    from remit.objectives import NTP, ReMiT, Rho1

    optim = OptimConfig(lr=lr, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8)
    world = World()

    def trainer(objective, reference):
        p = PolicyLogps(copy.deepcopy(policy))
        return Trainer(p, build_optimizer(p, optim), objective, world=world, reference=reference, grad_clip=0.0)

    makers = {
        "vanilla": lambda: trainer(NTP(), None),
        "remit_online": lambda: trainer(ReMiT(), OnlineReference(copy.deepcopy(ref))),
        "remit_cached": lambda: trainer(ReMiT(), CachedReference(cache_dir)),
        "rho1_online": lambda: trainer(Rho1(), OnlineReference(copy.deepcopy(ref))),
        "clt_remit_online": lambda: CLTStep(copy.deepcopy(policy), copy.deepcopy(ref), lr),
    }
    return {n: makers[n]() for n in names}


def measure_memory(name: str, batch: int, seq: int) -> dict:
    policy, ref, batches = build(batch, seq, 3)
    with tempfile.TemporaryDirectory() as d:
        cache = write_cache(ref, batches, Path(d)) if name == "remit_cached" else Path(d)
        v = make_variants(policy, ref, cache, 1e-4, [name])[name]
        del policy, ref
        return {"variant": name, "peak_above_start_mib": peak_above_start(lambda b: v.step([b], 1e-4), batches)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--mem", default=None, help=argparse.SUPPRESS)  # internal: one variant's memory
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "midtrain.json"))
    args = ap.parse_args()
    if args.mem:
        print(json.dumps(measure_memory(args.mem, args.batch, args.seq)))
        return
    names = ["vanilla", "remit_online", "remit_cached", "rho1_online", "clt_remit_online"]
    if importlib.util.find_spec("closed_loop") is None:  # the third-party comparison is optional
        print("closed-loop-training is not installed (pip install 'remit[bench]'): its variant is skipped",
              file=sys.stderr)
        names.remove("clt_remit_online")
    n = args.warmup + args.steps
    policy, ref, batches = build(args.batch, args.seq, n)
    with tempfile.TemporaryDirectory() as d:
        cache = write_cache(ref, batches, Path(d))
        variants = make_variants(policy, ref, cache, 1e-4, names)
        # Same batch, same start weights: remit's ReMiT loss equals closed-loop-training's (no masking here).
        first = {k: variants[k].step([batches[0]], 0.0)["loss"] for k in ("remit_online", "clt_remit_online")
                 if k in variants}
        times: dict[str, list[float]] = {k: [] for k in names}
        for i in range(1, n):
            for k in names:
                t0 = time.perf_counter()
                variants[k].step([batches[i]], 1e-4)
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v[args.warmup:]) for k, v in times.items()}
    mem = {}
    for k in [k for k in ("remit_online", "clt_remit_online", "vanilla") if k in names]:
        mem[k] = in_subprocess(__file__, k, args.batch, args.seq)
    result = {
        "setup": {"model": f"llama hidden {HIDDEN}, {LAYERS} layers, vocab {VOCAB}", "params": sum(
            p.numel() for p in policy.parameters()), "batch": args.batch, "seq": args.seq, "dtype": "float32",
            "device": "cpu", "threads": torch.get_num_threads(), "timed_steps": args.steps, "warmup": args.warmup},
        "median_step_s": med,
        "ratio_to_vanilla": {k: med[k] / med["vanilla"] for k in names},
        "remit_vs_clt_time": med["remit_online"] / med["clt_remit_online"] if "clt_remit_online" in med else None,
        "peak_mem_above_start_mib": mem,
        "first_step_loss": first,
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_midtrain.py",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
