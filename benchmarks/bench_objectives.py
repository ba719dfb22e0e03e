"""Benchmark: chunked ``token_logps`` vs the naive ``log_softmax + gather``, and the cost of ReMiT weights.

    .venv/bin/python benchmarks/bench_objectives.py            # vocab 50k, 8 x 1024 tokens, fp32, CPU
    .venv/bin/python benchmarks/bench_objectives.py --steps 10 --threads 1 --out /tmp/objectives.json

What is measured (forward + backward of ``logps.sum()`` w.r.t. fp32 logits that require grad):
* peak extra memory: each variant runs once in a FRESH subprocess. After the logits and labels are
  allocated, the process records its resident set (``VmRSS``), resets the kernel's high-water mark
  (writes "5" to ``/proc/self/clear_refs``), runs one forward + backward (keeping ``logits.grad``, which
  both variants must produce) and reads ``VmHWM``. extra = VmHWM - VmRSS_before. This is reliable on
  Linux because tensors this large are mmap-ed by glibc and returned on free, torch's CPU allocator does
  not cache, and the kernel tracks the peak exactly (no sampling, unlike polling psutil, and it sees
  allocations that tracemalloc does not). Linux only. Targets: chunked <= 0.55 x naive.
* time: both variants in THIS process, interleaved (the order alternates every step), ``--warmup``
  steps each, then the median of ``--steps`` steps. Target: chunked <= 1.10 x naive.
* ReMiT weights: median time of ``remit_weights`` on two [B, T] tensors (per row and per document)
  against the median time of the chunked loss computation above. Target: <= 3%.

Prints the ratios and writes them (with the host's thread count and load) to
``benchmarks/results/objectives.json``. The machine may be shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from remit.objectives import remit_weights, token_logps

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"memory_ratio": 0.55, "time_ratio": 1.10, "weights_fraction": 0.03}


def naive_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    safe = labels.clamp_min(0)
    lp = torch.log_softmax(logits.float(), dim=-1).gather(-1, safe[..., None]).squeeze(-1)
    return lp.masked_fill(labels == -100, 0.0)


def make_inputs(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(args.batch, args.seq, args.vocab, generator=g).mul_(2.0).requires_grad_()
    labels = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
    labels[:, -1] = -100  # one ignored position per row, as after the next-token shift
    return logits, labels


def step(variant: str, logits: torch.Tensor, labels: torch.Tensor, chunk: int | None) -> torch.Tensor:
    logits.grad = None
    lp = naive_logps(logits, labels) if variant == "naive" else token_logps(logits, labels, chunk_size=chunk)
    lp.sum().backward()
    return lp.detach()


def _proc_status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not found in /proc/self/status (Linux only)")


def memory_child(args: argparse.Namespace) -> None:
    """Runs in a fresh subprocess: print the peak extra bytes of one forward + backward as JSON."""
    torch.set_num_threads(args.threads)
    logits, labels = make_inputs(args)
    before = _proc_status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        method = "VmHWM after clear_refs"
    except OSError:
        method = "VmHWM (no reset: includes import-time peak if larger)"
    step(args.memory_child, logits, labels, args.chunk_size)
    peak = _proc_status_kb("VmHWM")
    print(json.dumps({"extra_bytes": (peak - before) * 1024, "rss_before_bytes": before * 1024, "method": method}))


def measure_memory(args: argparse.Namespace, variant: str) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", variant, "--vocab", str(args.vocab), "--batch",
           str(args.batch), "--seq", str(args.seq), "--threads", str(args.threads)]
    if args.chunk_size is not None:
        cmd += ["--chunk-size", str(args.chunk_size)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"memory subprocess for {variant} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure_time(args: argparse.Namespace) -> dict:
    logits, labels = make_inputs(args)
    times: dict[str, list[float]] = {"naive": [], "chunked": []}
    order = ["naive", "chunked"]
    lp_n = step("naive", logits, labels, None)
    g_n = logits.grad.clone()
    lp_c = step("chunked", logits, labels, args.chunk_size)
    agree = {"logps_max_abs_diff": (lp_n - lp_c).abs().max().item(),
             "grad_max_abs_diff": (g_n - logits.grad).abs().max().item()}
    del g_n
    for i in range(args.warmup + args.steps):
        for variant in (order if i % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            step(variant, logits, labels, args.chunk_size)
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                times[variant].append(dt)
        print(f"  step {i}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items() if v), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": med, "all_s": times, "ratio": med["chunked"] / med["naive"], "agreement": agree}


def measure_weights(args: argparse.Namespace, loss_s: float) -> dict:
    g = torch.Generator().manual_seed(1)
    shape = (args.batch, args.seq)
    ref = -torch.rand(shape, generator=g) * 5
    pol = -torch.rand(shape, generator=g) * 5
    mask = torch.rand(shape, generator=g) > 0.05
    doc_ids = torch.arange(args.seq).div(97, rounding_mode="floor").expand(shape).contiguous()
    out = {}
    for name, kw in (("per_row", {}), ("per_document", {"doc_ids": doc_ids})):
        ts = []
        for i in range(args.weight_reps + 20):
            t0 = time.perf_counter()
            remit_weights(ref, pol, mask, **kw)
            if i >= 20:
                ts.append(time.perf_counter() - t0)
        med = statistics.median(ts)
        out[name] = {"median_s": med, "fraction_of_loss": med / loss_s}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--chunk-size", type=int, default=None, help="rows per chunk (default: token_logps' default)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--weight-reps", type=int, default=200)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "objectives.json")
    p.add_argument("--memory-child", choices=["naive", "chunked"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    torch.set_num_threads(args.threads)
    n_tok, nv_bytes = args.batch * args.seq, args.batch * args.seq * args.vocab * 4
    print(f"token_logps: vocab {args.vocab}, {args.batch} x {args.seq} tokens, fp32 CPU, {args.threads} threads; "
          f"one [N, V] fp32 tensor = {nv_bytes / 2**30:.2f} GiB")
    mem = {v: measure_memory(args, v) for v in ("naive", "chunked")}
    mem_ratio = mem["chunked"]["extra_bytes"] / mem["naive"]["extra_bytes"]
    for v, m in mem.items():
        print(f"  peak extra memory {v:8s}: {m['extra_bytes'] / 2**30:.2f} GiB "
              f"({m['extra_bytes'] / nv_bytes:.2f} x [N, V] fp32)")
    print(f"  memory ratio chunked/naive = {mem_ratio:.3f} (target <= {TARGETS['memory_ratio']})")
    tm = measure_time(args)
    print(f"  median fwd+bwd: naive {tm['median_s']['naive']:.3f}s, chunked {tm['median_s']['chunked']:.3f}s; "
          f"ratio = {tm['ratio']:.3f} (target <= {TARGETS['time_ratio']})")
    wt = measure_weights(args, tm["median_s"]["chunked"])
    for name, r in wt.items():
        print(f"  remit_weights {name}: {r['median_s'] * 1e3:.3f} ms = {100 * r['fraction_of_loss']:.3f}% of the "
              f"loss computation (target <= {100 * TARGETS['weights_fraction']:.0f}%)")
    result = {
        "command": "python benchmarks/bench_objectives.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {"vocab": args.vocab, "batch": args.batch, "seq": args.seq, "tokens": n_tok, "dtype": "float32",
                   "device": "cpu", "threads": args.threads, "steps": args.steps, "warmup": args.warmup,
                   "chunk_rows": args.chunk_size or "default"},
        "host": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                 "loadavg_at_end": list(os.getloadavg())},
        "memory": {"naive_extra_bytes": mem["naive"]["extra_bytes"], "chunked_extra_bytes": mem["chunked"]["extra_bytes"],
                   "nv_fp32_bytes": nv_bytes, "ratio": mem_ratio, "method": mem["chunked"]["method"]},
        "time": tm,
        "remit_weights": wt,
        "targets": TARGETS,
        "pass": {"memory": mem_ratio <= TARGETS["memory_ratio"], "time": tm["ratio"] <= TARGETS["time_ratio"],
                 "weights": all(r["fraction_of_loss"] <= TARGETS["weights_fraction"] for r in wt.values())},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"pass: {result['pass']}; wrote {args.out}")


if __name__ == "__main__":
    main()
