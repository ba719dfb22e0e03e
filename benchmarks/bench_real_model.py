"""Step time and memory at a real shape: SmolLM2-135M (vocab 49,152), seq 512, vanilla vs ReMiT online / cached.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real_model.py     # writes benchmarks/results/real_model/bench.json

The model is the real-model lane's (``benchmarks/real_model/fetch.py``: the pinned GGUF, converted to fp32).
Step time: full optimizer steps of ``remit.midtrain.trainer.Trainer`` (forward, objective, backward, AdamW) on
the same batches for vanilla NTP, online ReMiT (the model itself as frozen reference) and cached ReMiT (a
score-reference style cache of the same rows), interleaved step by step in one process; median of ``--steps``
timed steps after warm-up (as ``bench_midtrain.py``). The variants share one policy and one optimizer (the
work per step is the same; only the 135M model's memory is not tripled).
Memory: peak RSS above the start of the step loop (Linux VmHWM reset through /proc/self/clear_refs), each in a
fresh subprocess, for remit's log-prob path (``PolicyLogps``: chunked LM head, fp32 log-probs of the labels
only; the vanilla NTP objective) against the model's own loss (``model(input_ids, labels=...).loss``, which
materialises the [B, T, 49152] logits), and for online ReMiT.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "real_model"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from memory import in_subprocess, peak_above_start  # noqa: E402

VARIANTS = ("vanilla", "remit_online", "remit_cached")


def load(batch: int, seq: int, n_batches: int):
    from fetch import fetch

    from remit.models import load_model

    model = load_model(fetch(), dtype="float32", device="cpu").train()
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    batches = []
    for i in range(n_batches):
        toks = torch.randint(0, vocab, (batch, seq + 1), generator=g)
        batches.append({"input_ids": toks[:, :-1], "labels": toks[:, 1:].clone(),
                        "doc_ids": torch.zeros(batch, seq, dtype=torch.long),
                        "row_index": torch.arange(i * batch, (i + 1) * batch)})
    return model, batches


def trainers(model, batches, cache_dir: Path, names, lr: float = 1e-5):
    """Trainers sharing ``model`` and one AdamW; the reference is a frozen copy (or its cache)."""
    import copy

    from remit.midtrain.config import OptimConfig
    from remit.midtrain.distributed import World
    from remit.midtrain.reference import CachedReference, OnlineReference, PolicyLogps, write_rows_cache
    from remit.midtrain.trainer import Trainer, build_optimizer
    from remit.objectives import NTP, ReMiT

    policy = PolicyLogps(model)
    opt = build_optimizer(policy, OptimConfig(lr=lr, weight_decay=0.0))
    world = World()
    out = {}
    if "remit_online" in names or "remit_cached" in names:
        online = OnlineReference(copy.deepcopy(model))
        if "remit_cached" in names:
            write_rows_cache(cache_dir, np.concatenate([online(b)[0].numpy() for b in batches]))
    for name in names:
        ref = {"vanilla": None, "remit_online": online if name == "remit_online" else None,
               "remit_cached": CachedReference(cache_dir) if name == "remit_cached" else None}[name]
        out[name] = Trainer(policy, opt, NTP() if name == "vanilla" else ReMiT(), world=world, reference=ref)
    return out


def measure_memory(name: str, batch: int, seq: int) -> dict:
    model, batches = load(batch, seq, 3)
    with tempfile.TemporaryDirectory() as d:
        if name == "hf_loss":
            opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

            def step(b):
                model(input_ids=b["input_ids"], labels=b["input_ids"]).loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        else:
            t = trainers(model, batches, Path(d), [name])[name]

            def step(b):
                t.step([b], 1e-5)
        return {"variant": name, "peak_above_start_mib": peak_above_start(step, batches)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--mem", default=None, help=argparse.SUPPRESS)  # internal: one variant's memory
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_model" / "bench.json"))
    args = ap.parse_args()
    if args.mem:
        print(json.dumps(measure_memory(args.mem, args.batch, args.seq)))
        return
    n = args.warmup + args.steps
    model, batches = load(args.batch, args.seq, n)
    params = sum(p.numel() for p in model.parameters())
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    first: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        ts = trainers(model, batches, Path(d), VARIANTS)
        for i in range(n):
            for k in VARIANTS:
                t0 = time.perf_counter()
                rec = ts[k].step([batches[i]], 1e-5 if i else 0.0, collect_stats=(i == 0))
                times[k].append(time.perf_counter() - t0)
                if i == 0:
                    first[k] = rec["loss"]
    del ts, model
    med = {k: statistics.median(v[args.warmup:]) for k, v in times.items()}
    mem = {}
    for k in ("hf_loss", "vanilla", "remit_online"):
        mem[k] = in_subprocess(__file__, k, args.batch, args.seq)
    result = {
        "setup": {"model": "SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to fp32)", "params": params,
                  "vocab": 49152, "batch": args.batch, "seq": args.seq, "dtype": "float32", "device": "cpu",
                  "threads": torch.get_num_threads(), "timed_steps": args.steps, "warmup": args.warmup},
        "median_step_s": med,
        "tokens_per_s": {k: args.batch * args.seq / v for k, v in med.items()},
        "ratio_to_vanilla": {k: med[k] / med["vanilla"] for k in VARIANTS},
        "first_step_loss": first,  # the first step's losses match: the reference is the model itself
        "peak_mem_above_start_mib": mem,
        "logprob_path_vs_hf_loss_peak": mem["vanilla"] / mem["hf_loss"],
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real_model.py",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
