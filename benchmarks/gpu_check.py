"""The prepared device check: remit's engine on one GPU at OLMo-2-1B shape, bf16 (target: <= 6 min on an H200).

    PYTHONPATH=src python benchmarks/gpu_check.py            # one GPU; writes benchmarks/results/gpu.json
    PYTHONPATH=src python benchmarks/gpu_check.py --tiny     # the same code on CPU in seconds (a CI test)

Needs only torch and transformers (no datasets, TRL or lm-eval): it builds remit's own ``Trainer``,
``PolicyLogps``, ``OnlineReference`` / ``CachedReference``, objectives, ``perf`` options and FSDP2 wrapper
directly (the code ``remit midtrain`` runs; only data loading and checkpoint files are left out). It reports:

* training: tokens/s and MFU for vanilla, online ReMiT, cached ReMiT and RHO-1, eager and with
  ``perf.compile``; random-init OLMo-2-1B shape (hidden 2048, 16 layers, vocab 100352), fp32 master
  weights, bf16 autocast, fused AdamW; the micro-batch is halved until it fits. MFU counts the policy's
  training FLOPs, 6N (N without the input embedding) + 12 * layers * hidden * seq per token (PaLM's
  attention term), against the chip's dense bf16 peak (``remit.utils.integrations.bf16_peak_flops``;
  ``--peak-tflops`` when the chip is not in its table; ``--tiny``: a measured fp32 GEMM rate);
* ``token_logps`` vs naive ``log_softmax + gather``: extra peak memory of forward + backward on bf16
  logits at a 100k vocabulary (CUDA: allocator peak; CPU: VmHWM, rough);
* FSDP2 without a second process: a world of one (``HashStore``), ``shard_fsdp`` and one step, whose loss
  must equal the unsharded first step;
* the numerics noise floor (``noise_floor``): with identical weights, the reference's log-probs under the
  run's numerics (``perf.numerics``: fp32 weights, bf16 autocast) against the policy's training forward
  (delta must be exactly 0), the same reference scored with twice the rows per forward (what a
  ``score-reference`` cache or ``perf.reference_micro_batch_size`` does; GEMM tiling may differ), a
  reference with bf16 weights (this project's choice on CUDA before issue #20), and bf16-autocast vs
  fp32 log-probs (the noise of bf16 logits themselves); as max |delta| and ReMiT weight std (eps 0.2).
  All eager: compiled vs eager graphs (``perf.compile``) are not measured. Only the same-rows case is
  expected to be bit-identical on CUDA; the others show the rounding noise a run may carry;
* generation throughput of the evaluation path (``model.generate``, greedy, batched, KV cache, bf16:
  what lm-eval's HFLM calls for ``generate_until``).

Goals (on an H200): vanilla MFU >= 0.40, online ReMiT <= 1.33x vanilla, cached <= 1.03x, token_logps
extra peak <= 0.3x naive.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OLMO2_1B = dict(hidden_size=2048, num_layers=16, num_heads=16, intermediate_size=8192, vocab_size=100352,
                max_position_embeddings=4096, rope_theta=500000.0, tie_word_embeddings=False)
TINY = dict(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=256, vocab_size=1024,
            max_position_embeddings=128, rope_theta=10000.0, tie_word_embeddings=False)
METHODS = ("vanilla", "remit_online", "remit_cached", "rho1_online")
GOALS = {"vanilla_mfu_min": 0.40, "remit_online_ratio_max": 1.33, "remit_cached_ratio_max": 1.03,
         "token_logps_memory_ratio_max": 0.30}


def build_model(shape: dict, seed: int, dtype: str, device: str):
    from remit.models import init_model, tiny_config

    cfg = tiny_config("olmo2", **shape, attn_implementation="sdpa")
    with torch.device(device):  # initialise on the device (a 1.5B CPU init takes tens of seconds)
        return init_model(cfg, seed=seed, dtype=dtype).to(device)


def flops_per_token(model, seq: int) -> float:
    from remit.models import param_count

    c = model.config
    n = param_count(model) - model.get_input_embeddings().weight.numel()
    return 6.0 * n + 12.0 * c.num_hidden_layers * c.hidden_size * seq


def measured_peak(device: str) -> float:
    """FLOP/s of a large matmul in the training dtype (the MFU denominator when the chip is unknown)."""
    from remit.utils.integrations import device_synchronize

    n, dt = (4096, torch.bfloat16) if device.startswith("cuda") else (512, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
    for _ in range(2):
        a @ b
    device_synchronize(device)
    t0, reps = time.perf_counter(), 10
    for _ in range(reps):
        a @ b
    device_synchronize(device)
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0)


def make_batches(n: int, rows: int, seq: int, vocab: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        toks = torch.randint(0, vocab, (rows, seq + 1), generator=g)
        out.append({"input_ids": toks[:, :-1], "labels": toks[:, 1:].clone(), "row_index": torch.arange(
            i * rows, (i + 1) * rows), "doc_ids": torch.zeros(rows, seq, dtype=torch.long)})
    return out


def write_cache(reference, batches, path: Path) -> Path:
    """A ``remit score-reference`` style cache (fp32 .npy shard) of the reference's log-probs for the batches."""
    from remit.midtrain.reference import write_rows_cache

    return write_rows_cache(path, np.concatenate([reference(b)[0].float().cpu().numpy() for b in batches]))


def make_trainer(method: str, policy, reference, cache_dir: Path, device: str, world=None):
    """The engine's Trainer for ``method`` around ``policy`` (a PolicyLogps, possibly FSDP2-sharded)."""
    from remit.midtrain import perf
    from remit.midtrain.config import OptimConfig, PerfConfig
    from remit.midtrain.distributed import World
    from remit.midtrain.reference import CachedReference
    from remit.midtrain.trainer import Trainer, build_optimizer
    from remit.objectives import NTP, ReMiT, Rho1

    pc = PerfConfig()
    objective = {"vanilla": NTP, "remit_online": ReMiT, "remit_cached": ReMiT, "rho1_online": Rho1}[method]()
    ref = CachedReference(cache_dir) if method == "remit_cached" else reference if method != "vanilla" else None
    optimizer = build_optimizer(policy, OptimConfig(lr=1e-5), fused=perf.use_fused_adamw(pc, device))
    return Trainer(policy, optimizer, objective, world=world or World(device=device), reference=ref, grad_clip=1.0,
                   autocast_dtype=perf.autocast_dtype(pc, device))


def time_steps(trainer, batches, warmup: int, device: str) -> dict:
    from remit.utils.integrations import device_synchronize, peak_memory_bytes, reset_peak_memory

    reset_peak_memory(device)
    times, first = [], None
    for b in batches:
        device_synchronize(device)
        t0 = time.perf_counter()
        res = trainer.step([b], 1e-5)
        device_synchronize(device)
        times.append(time.perf_counter() - t0)
        first = res["loss"] if first is None else first
    peak = peak_memory_bytes(device)
    return {"step_s": statistics.median(times[warmup:]), "first_step_s": times[0], "first_loss": first,
            "peak_mem_gib": None if peak is None else peak / 2 ** 30}


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def one_variant(args, shape, device, method: str, compiled: bool, reference, mb: int, cache_root: Path) -> dict:
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import PolicyLogps

    batches = make_batches(args.warmup + args.steps, mb, args.seq, shape["vocab_size"])
    cache = cache_root / f"cache-{mb}"
    if method == "remit_cached" and not cache.exists():
        write_cache(reference, batches, cache)
    model = trainer = None
    try:
        model = build_model(shape, 0, "float32", device).train()
        perf.apply_to_model(model, PerfConfig(compile=compiled), backend=args.backend)
        trainer = make_trainer(method, PolicyLogps(model, chunk_size=args.chunk_size), reference, cache, device)
        return time_steps(trainer, batches, args.warmup, device)
    finally:
        del trainer, model
        free(device)


def run_training(args, shape, device, peak) -> tuple[dict, int]:
    """Every method, eager then compiled; the micro-batch is halved on out-of-memory in the first variant."""
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import OnlineReference
    from remit.utils.integrations import is_out_of_memory

    ref_model = build_model(shape, 1, perf.numerics(PerfConfig().precision, device)[0], device)
    reference = OnlineReference(ref_model, chunk_size=args.chunk_size,
                                autocast_dtype=perf.autocast_dtype(PerfConfig(), device))
    fpt = flops_per_token(ref_model, args.seq)
    out: dict = {"eager": {}, "compiled": {}}
    mb = args.micro_batch
    with tempfile.TemporaryDirectory() as d:
        for key in ("eager", "compiled"):
            if key == "compiled":  # the frozen reference is compiled too, as remit midtrain does
                perf.apply_to_model(ref_model, PerfConfig(compile=True), frozen=True, backend=args.backend)
            for method in METHODS:
                while True:
                    try:
                        res = one_variant(args, shape, device, method, key == "compiled", reference, mb, Path(d))
                        break
                    except Exception as e:  # noqa: BLE001 - only out-of-memory in the first variant is retried
                        if not is_out_of_memory(e) or mb == 1 or out["eager"]:
                            raise
                    # outside the except block, so that the failed step's frames and tensors are freed
                    free(device)
                    mb //= 2
                    print(f"  out of memory: micro-batch -> {mb}", flush=True)
                res["tokens_per_s"] = mb * args.seq / res["step_s"]
                res["mfu"] = res["tokens_per_s"] * fpt / peak
                out[key][method] = res
                print(f"  {key:8s} {method:13s} {res['tokens_per_s']:10.0f} tok/s  MFU {res['mfu']:.3f}  "
                      f"(first step {res['first_step_s']:.1f} s)", flush=True)
            for method in METHODS:
                out[key][method]["ratio_to_vanilla"] = out[key][method]["step_s"] / out[key]["vanilla"]["step_s"]
    del reference, ref_model
    free(device)
    return out, mb


def token_logps_memory(args, device: str) -> dict:
    """Extra peak bytes of forward + backward of token_logps vs log_softmax + gather on bf16 logits."""
    from remit.objectives import token_logps
    from remit.utils.integrations import peak_memory_bytes, reset_peak_memory

    n, vocab = (args.logps_tokens, 100352) if not args.tiny else (256, 100352)
    g = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn(n, vocab, device=device, dtype=torch.bfloat16, generator=g).requires_grad_()
    labels = torch.randint(0, vocab, (n,), device=device, generator=g)

    def naive():
        return torch.log_softmax(logits.float(), -1).gather(-1, labels[:, None]).squeeze(-1)

    def extra(fn) -> int:
        logits.grad = None
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated(torch.device(device))
            reset_peak_memory(device)
        else:
            before = _rss_kib("VmRSS") * 1024
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        fn().sum().backward()
        peak = peak_memory_bytes(device) if device.startswith("cuda") else _rss_kib("VmHWM") * 1024
        return int(peak - before)

    res = {"tokens": n, "vocab": vocab, "logits_dtype": "bfloat16",
           "naive_extra_bytes": extra(naive), "token_logps_extra_bytes": extra(lambda: token_logps(logits, labels))}
    res["ratio"] = res["token_logps_extra_bytes"] / max(res["naive_extra_bytes"], 1)
    res["grad_bytes"] = logits.numel() * logits.element_size()  # the gradient both must produce
    return res


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def fsdp_one_process(args, shape, device: str, mb: int, unsharded_loss: float) -> dict:
    """FSDP2 on a world of one: the process group over a HashStore, no second process, no torchrun."""
    import torch.distributed as dist

    from remit.midtrain.distributed import World, shard_fsdp

    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", store=dist.HashStore(), rank=0,
                            world_size=1)
    try:
        from remit.midtrain.reference import PolicyLogps

        sharded = shard_fsdp(PolicyLogps(build_model(shape, 0, "float32", device).train(), chunk_size=args.chunk_size))
        trainer = make_trainer("vanilla", sharded, None, Path("."), device, world=World(device=device))
        batches = make_batches(args.warmup + args.steps, mb, args.seq, shape["vocab_size"])
        res = time_steps(trainer, batches, args.warmup, device)
        is_dtensor = type(next(sharded.parameters())).__name__ == "DTensor"
        del trainer, sharded
    finally:
        dist.destroy_process_group()
    return {"step_s": res["step_s"], "tokens_per_s": mb * args.seq / res["step_s"], "first_loss": res["first_loss"],
            "unsharded_first_loss": unsharded_loss, "loss_abs_diff": abs(res["first_loss"] - unsharded_loss),
            "params_are_dtensors": is_dtensor, "backend": "nccl" if device.startswith("cuda") else "gloo"}


def generation(args, shape, device: str) -> dict:
    """Greedy batched decoding with the KV cache in the evaluation dtype, every row run to the token cap."""
    from remit.utils.integrations import default_dtype, device_synchronize

    model = build_model(shape, 2, default_dtype(device), device).eval()
    b, p, new = (args.gen_batch, args.gen_prompt, args.gen_tokens) if not args.tiny else (4, 16, 8)
    ids = torch.randint(0, shape["vocab_size"], (b, p), generator=torch.Generator().manual_seed(0)).to(device)
    kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False,
              use_cache=True, pad_token_id=0)
    with torch.inference_mode():
        model.generate(ids, **(kw | {"max_new_tokens": 2, "min_new_tokens": 2}))  # warm-up
        device_synchronize(device)
        t0 = time.perf_counter()
        out = model.generate(ids, **kw)
        device_synchronize(device)
        wall = time.perf_counter() - t0
    made = (out.shape[1] - p) * b
    return {"batch": b, "prompt_tokens": p, "new_tokens": new, "generated": made, "wall_s": wall,
            "tokens_per_s": made / wall, "dtype": default_dtype(device)}


def noise_floor(args, shape, device: str, mb: int) -> dict:
    """delta = ref - policy for IDENTICAL weights under several numerics (see the module docstring)."""
    from remit.midtrain import perf
    from remit.midtrain.reference import OnlineReference, PolicyLogps, score_rows
    from remit.objectives.remit import remit_weights_and_delta
    from remit.utils.integrations import autocast

    weights, dt = perf.numerics("bf16", device)  # bf16 autocast on CPU too (the --tiny emulation)
    batches = make_batches(2, mb, args.seq, shape["vocab_size"])
    policy = PolicyLogps(build_model(shape, 0, weights, device).train(), chunk_size=args.chunk_size)
    with autocast(torch.device(device).type, dt):  # the training forward (with grad), as the Trainer runs it
        pol = policy(batches[0]["input_ids"].to(device), batches[0]["labels"].to(device))[0].detach()
    with torch.inference_mode():
        fp32 = policy(batches[0]["input_ids"].to(device), batches[0]["labels"].to(device))[0]
    del policy

    def stats(ref_logps) -> dict:
        w, d = remit_weights_and_delta(ref_logps.to(pol.device), pol, torch.ones_like(pol, dtype=torch.bool))
        return {"max_abs_delta": float(d.abs().max()), "mean_abs_delta": float(d.abs().mean()),
                "weight_std": float(w.std()), "weight_max_dev": float((w - 1).abs().max())}

    out = {"precision": perf.numerics_key("bf16", device), "rows": mb, "bf16_vs_fp32_logps": stats(fp32)}
    for name, wdt in (("same_numerics", weights), ("bf16_weights", "bfloat16")):
        ref = OnlineReference(build_model(shape, 0, wdt, device), chunk_size=args.chunk_size, autocast_dtype=dt)
        out[name] = stats(ref({k: v.to(device) for k, v in batches[0].items()})[0])
        if name == "same_numerics":  # 2 x mb rows per forward, as a cache scored with another batch size
            out["same_numerics_2x_rows"] = stats(score_rows(ref, batches, 2 * mb, torch.device(device))[0][0])
        del ref
        free(device)
    return out


def table(res: dict) -> str:
    lines = ["| variant | eager tok/s | eager MFU | x vanilla | compiled tok/s | compiled MFU | x vanilla |",
             "|---|---|---|---|---|---|---|"]
    for m in METHODS:
        e, c = res["training"]["eager"][m], res["training"]["compiled"][m]
        lines.append(f"| {m} | {e['tokens_per_s']:.0f} | {e['mfu']:.3f} | {e['ratio_to_vanilla']:.3f} | "
                     f"{c['tokens_per_s']:.0f} | {c['mfu']:.3f} | {c['ratio_to_vanilla']:.3f} |")
    t, f, g = res["token_logps_memory"], res["fsdp2_one_process"], res["generation"]
    lines += ["", f"token_logps extra peak: {t['ratio']:.3f}x naive ({t['token_logps_extra_bytes'] / 2 ** 20:.0f} vs "
              f"{t['naive_extra_bytes'] / 2 ** 20:.0f} MiB, {t['tokens']} tokens x vocab {t['vocab']})",
              f"FSDP2 (world of one, {f['backend']}): {f['tokens_per_s']:.0f} tok/s, first loss {f['first_loss']:.5f} "
              f"vs unsharded {f['unsharded_first_loss']:.5f}",
              "noise floor (identical weights, " + ", ".join(
                  f"{k}: w std {v['weight_std']:.2g}" for k, v in res["noise_floor"].items() if isinstance(v, dict))
              + ")",
              f"generation: {g['tokens_per_s']:.0f} tok/s (batch {g['batch']}, {g['new_tokens']} new tokens)",
              "goals: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in res["goals"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny model on CPU, seconds (the CI test)")
    ap.add_argument("--seq", type=int, default=None, help="sequence length (default 4096; tiny 32)")
    ap.add_argument("--micro-batch", type=int, default=None, help="rows per micro-batch to try first (default 8)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 4; tiny 2)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=None, help="the chip's dense bf16 peak if not in the table")
    ap.add_argument("--backend", default=None, help="torch.compile backend (default inductor; tiny aot_eager)")
    ap.add_argument("--chunk-size", type=int, default=None, help="rows per log-prob chunk (reference.chunk_size)")
    ap.add_argument("--logps-tokens", type=int, default=8192)
    ap.add_argument("--gen-batch", type=int, default=32)
    ap.add_argument("--gen-prompt", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--out", default=None, help="default benchmarks/results/gpu.json (tiny: gpu_tiny.json)")
    args = ap.parse_args(argv)
    import transformers

    from remit.objectives.logprobs import _rows_per_chunk
    from remit.utils.integrations import bf16_peak_flops, default_device

    t_start = time.perf_counter()
    device = "cpu" if args.tiny else default_device()
    if device == "cpu" and not args.tiny:
        raise SystemExit("no GPU visible: run with --tiny for the CPU check")
    shape = TINY if args.tiny else OLMO2_1B
    args.seq = args.seq or (32 if args.tiny else 4096)
    args.micro_batch = args.micro_batch or (2 if args.tiny else 8)
    args.steps = args.steps or (2 if args.tiny else 4)
    args.warmup = 1 if args.tiny else args.warmup
    args.backend = args.backend or ("aot_eager" if args.tiny else None)
    peak, chip = bf16_peak_flops(device)
    source = f"table: {chip} dense bf16"
    if args.peak_tflops:
        peak, source = args.peak_tflops * 1e12, f"--peak-tflops ({chip})"
    elif peak is None:
        peak, source = measured_peak(device), f"measured GEMM rate on {chip}"
    torch.manual_seed(0)
    training, mb = run_training(args, shape, device, peak)
    logps = token_logps_memory(args, device)
    fsdp = fsdp_one_process(args, shape, device, mb, training["eager"]["vanilla"]["first_loss"])
    noise = noise_floor(args, shape, device, min(mb, 2))
    gen = generation(args, shape, device)
    eager = training["eager"]
    res = {
        "setup": {"device": device, "chip": chip, "peak_flops": peak, "peak_source": source, "shape": shape,
                  "seq": args.seq, "micro_batch": mb, "timed_steps": args.steps, "warmup": args.warmup,
                  "compile_backend": args.backend or "inductor", "logps_chunk_rows": args.chunk_size or
                  _rows_per_chunk(None, shape["vocab_size"], torch.device(device)), "precision": "fp32 master weights, bf16 autocast"
                  if device != "cpu" else "fp32", "torch": torch.__version__,
                  "transformers": transformers.__version__, "python": platform.python_version()},
        "training": training, "token_logps_memory": logps, "fsdp2_one_process": fsdp, "generation": gen,
        "noise_floor": noise,
        "goals": {"vanilla_mfu >= 0.40": eager["vanilla"]["mfu"] >= GOALS["vanilla_mfu_min"],
                  "remit_online <= 1.33x": eager["remit_online"]["ratio_to_vanilla"] <= GOALS["remit_online_ratio_max"],
                  "remit_cached <= 1.03x": eager["remit_cached"]["ratio_to_vanilla"] <= GOALS["remit_cached_ratio_max"],
                  "token_logps <= 0.3x naive": logps["ratio"] <= GOALS["token_logps_memory_ratio_max"],
                  "identical weights: delta exactly 0": noise["same_numerics"]["max_abs_delta"] == 0.0},
        "command": "PYTHONPATH=src python benchmarks/gpu_check.py" + (" --tiny" if args.tiny else ""),
    }
    res["wall_s"] = time.perf_counter() - t_start
    out = Path(args.out or ROOT / "benchmarks" / "results" / ("gpu_tiny.json" if args.tiny else "gpu.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(table(res))
    print(f"wrote {out} ({res['wall_s']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
