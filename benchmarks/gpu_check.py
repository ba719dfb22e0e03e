"""The prepared device check: remit's engine on one GPU at OLMo-2-1B shape (target: <= 5 min on an H200).

    PYTHONPATH=src python benchmarks/gpu_check.py                  # one GPU; writes benchmarks/results/gpu.json
    PYTHONPATH=src python benchmarks/gpu_check.py --budget-s 240   # sections past the budget are skipped
    PYTHONPATH=src python benchmarks/gpu_check.py --tiny           # the same code on CPU in seconds (a CI test)

Needs only torch and transformers: it builds remit's own ``Trainer``, ``PolicyLogps``, references, objectives,
``perf`` options, FSDP2 wrapper and sharded checkpoints directly (the code ``remit midtrain`` runs). The JSON is
written after EVERY section; a section that fails is recorded (``errors``) and the next one runs; a section
that would start past ``--budget-s`` is recorded as skipped. Sections:

* ``training``: optimizer-step time of vanilla, online ReMiT, online ReMiT with the reference scoring all
  micro-batches in one forward (``perf.reference_micro_batch_size``), cached ReMiT and RHO-1, each step
  ``--accum`` micro-batches (gradient accumulation), eager and ``perf.compile``; ratios to vanilla and MFU
  (6N + attention FLOPs per token against the chip's dense bf16 peak: 989 TFLOP/s on H100 / H200);
* ``step_memory``: peak memory of a whole forward + backward with remit's log-prob path
  (``PolicyLogps`` -> ``token_logps_from_hidden``) and with the model's own ``labels=`` loss, each above
  the decoder alone: the log-prob path's extra peak as a fraction of the model loss's;
* ``numerics``: the floor of ReMiT's weights: policy and reference with the SAME weights under the shipped
  numerics (``perf.numerics``: fp32 weights, bf16 autocast for both; delta must be 0), plus a reference with
  bf16 weights and bf16-autocast vs fp32 log-probs (the rounding noise outside the policy), all eager
  (compiled vs eager graphs are not measured; only the same shapes are expected bit-identical on CUDA);
  and one AdamW update applied to fp32 vs bf16 weights (the share of updates bf16 loses at a mid-training lr);
* ``fsdp2``: FSDP2 (a world of one, no torchrun) over 3 optimizer steps must match the unsharded steps; then a
  sharded (DCP) save, 3 more steps, and a fresh model loaded from the save continuing the same 3 steps must
  match them (a check that fails when save, load or resume are wrong);
* ``scoring``: forward-only reference scoring tokens/s at batch 8 and 32, and GPU-hours to cache 10B tokens;
* ``generation``: greedy decoding tokens/s at an lm-eval shape and at a GRPO shape.

Goals (``goals`` in the JSON, None when not measured): online ReMiT <= 1.33x vanilla, cached <= 1.03x, the
log-prob path's extra peak <= 0.3x the model loss's, numerics-floor weight std < 0.005.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OLMO2_1B = dict(hidden_size=2048, num_layers=16, num_heads=16, intermediate_size=8192, vocab_size=100352,
                max_position_embeddings=4096, rope_theta=500000.0, tie_word_embeddings=False)
TINY = dict(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=256, vocab_size=1024,
            max_position_embeddings=128, rope_theta=10000.0, tie_word_embeddings=False)
METHODS = ("vanilla", "remit_online", "remit_online_refmb", "remit_cached", "rho1_online")
GOALS = {"remit_online <= 1.33x vanilla": 1.33, "remit_cached <= 1.03x vanilla": 1.03,
         "log-prob extra peak <= 0.3x model loss": 0.30, "numerics floor weight std < 0.005": 0.005}


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


def make_batches(n: int, rows: int, seq: int, vocab: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        toks = torch.randint(0, vocab, (rows, seq + 1), generator=g)
        out.append({"input_ids": toks[:, :-1], "labels": toks[:, 1:].clone(), "row_index": torch.arange(
            i * rows, (i + 1) * rows), "doc_ids": torch.zeros(rows, seq, dtype=torch.long)})
    return out


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def make_trainer(method: str, policy, reference, cache_dir: Path, device: str, world=None, ref_rows=None):
    """The engine's Trainer for ``method`` around ``policy`` (a PolicyLogps, possibly FSDP2-sharded)."""
    from remit.midtrain import perf
    from remit.midtrain.config import OptimConfig, PerfConfig
    from remit.midtrain.distributed import World
    from remit.midtrain.reference import CachedReference
    from remit.midtrain.trainer import Trainer, build_optimizer
    from remit.objectives import NTP, ReMiT, Rho1

    pc = PerfConfig()
    objective = {"vanilla": NTP, "remit_online": ReMiT, "remit_online_refmb": ReMiT, "remit_cached": ReMiT,
                 "rho1_online": Rho1}[method]()
    ref = CachedReference(cache_dir) if method == "remit_cached" else reference if method != "vanilla" else None
    optimizer = build_optimizer(policy, OptimConfig(lr=1e-5, eps=1e-6), fused=perf.use_fused_adamw(pc, device))
    return Trainer(policy, optimizer, objective, world=world or World(device=device), reference=ref, grad_clip=1.0,
                   autocast_dtype=perf.autocast_dtype(pc, device), reference_rows=ref_rows)


def run_steps(trainer, batches, accum: int, device: str, lr: float = 1e-5) -> tuple[list[float], list[float]]:
    """(seconds, loss) of each optimizer step over ``accum`` micro-batches at a time."""
    from remit.utils.integrations import device_synchronize

    times, losses = [], []
    for i in range(0, len(batches), accum):
        device_synchronize(device)
        t0 = time.perf_counter()
        losses.append(trainer.step(batches[i:i + accum], lr)["loss"])
        device_synchronize(device)
        times.append(time.perf_counter() - t0)
    return times, losses


def one_variant(ctx, method: str, compiled: bool, mb: int, cache_root: Path) -> dict:
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import PolicyLogps, write_rows_cache
    from remit.utils.integrations import peak_memory_bytes, reset_peak_memory

    a, device = ctx["args"], ctx["device"]
    batches = make_batches((a.warmup + a.steps) * a.accum, mb, a.seq, ctx["shape"]["vocab_size"])
    cache = cache_root / f"cache-{mb}"
    if method == "remit_cached" and not cache.exists():
        # the trainer moves its batches to the device; this direct call must do it itself
        rows = [ctx["reference"]({k: v.to(device) for k, v in b.items()})[0].float().cpu().numpy() for b in batches]
        write_rows_cache(cache, np.concatenate(rows))
    model = trainer = None
    try:
        model = build_model(ctx["shape"], 0, "float32", device).train()
        perf.apply_to_model(model, PerfConfig(compile=compiled), backend=a.backend)
        trainer = make_trainer(method, PolicyLogps(model, chunk_size=a.chunk_size), ctx["reference"], cache, device,
                               ref_rows=mb * a.accum if method == "remit_online_refmb" else None)
        reset_peak_memory(device)
        times, losses = run_steps(trainer, batches, a.accum, device)
        peak = peak_memory_bytes(device)
        return {"step_s": statistics.median(times[a.warmup:]), "first_step_s": times[0], "first_loss": losses[0],
                "peak_mem_gib": None if peak is None else peak / 2 ** 30}
    finally:
        del trainer, model
        free(device)


def section_training(ctx) -> dict:
    """Every method, eager then compiled; the micro-batch is halved on out-of-memory in the first variant."""
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import OnlineReference
    from remit.utils.integrations import is_out_of_memory

    a, device = ctx["args"], ctx["device"]
    ref_model = build_model(ctx["shape"], 1, "bfloat16" if device.startswith("cuda") else "float32", device)
    ctx["reference"] = OnlineReference(ref_model, chunk_size=a.chunk_size,
                                       autocast_dtype=perf.autocast_dtype(PerfConfig(), device))
    fpt = flops_per_token(ref_model, a.seq)
    out: dict = {"accum": a.accum, "eager": {}, "compiled": {}, "skipped": []}
    mb = a.micro_batch
    with tempfile.TemporaryDirectory() as d:
        for key in ("eager", "compiled"):
            if key == "compiled":  # the frozen reference is compiled too, as remit midtrain does
                perf.apply_to_model(ref_model, PerfConfig(compile=True), frozen=True, backend=a.backend)
            for method in METHODS:
                if ctx["over_budget"]():
                    out["skipped"].append(f"{key}/{method}")
                    continue
                while True:
                    try:
                        res = one_variant(ctx, method, key == "compiled", mb, Path(d))
                        break
                    except Exception as e:  # noqa: BLE001 - only out-of-memory in the first variant is retried
                        if not is_out_of_memory(e) or mb == 1 or out["eager"]:
                            raise
                    free(device)  # outside the except block, so that the failed step's frames are freed
                    mb //= 2
                    print(f"  out of memory: micro-batch -> {mb}", flush=True)
                res["tokens_per_s"] = mb * a.accum * a.seq / res["step_s"]
                res["mfu"] = res["tokens_per_s"] * fpt / ctx["peak"]
                out[key][method] = res
                print(f"  {key:8s} {method:18s} {res['tokens_per_s']:10.0f} tok/s  MFU {res['mfu']:.3f}", flush=True)
            for res in out[key].values():
                if "vanilla" in out[key]:
                    res["ratio_to_vanilla"] = res["step_s"] / out[key]["vanilla"]["step_s"]
    ctx["mb"], out["micro_batch"] = mb, mb
    del ctx["reference"], ref_model
    return out


def _peak_of(fn, device: str) -> int:
    """Peak bytes above the memory before ``fn`` (CUDA: allocator peak; CPU: VmHWM, rough)."""
    from remit.utils.integrations import peak_memory_bytes, reset_peak_memory

    free(device)
    if device.startswith("cuda"):
        before = torch.cuda.memory_allocated(torch.device(device))
        reset_peak_memory(device)
    else:
        before = _rss_kib("VmRSS") * 1024
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    fn()
    peak = peak_memory_bytes(device) if device.startswith("cuda") else _rss_kib("VmHWM") * 1024
    return int(peak - before)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def section_step_memory(ctx) -> dict:
    """Forward + backward peak of remit's log-prob path vs the model's own labels= loss, above the decoder."""
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import PolicyLogps
    from remit.utils.integrations import autocast

    a, device = ctx["args"], ctx["device"]
    # --tiny: a 32k vocabulary, so that the logits are large enough for the CPU's page-level peak to see
    shape = {**ctx["shape"], "vocab_size": 32768} if a.tiny else ctx["shape"]
    model = build_model(shape, 0, "float32", device).train()
    policy = PolicyLogps(model, chunk_size=a.chunk_size)
    rows, seq = (4, 64) if a.tiny else (ctx.get("mb", a.micro_batch), a.seq)
    b = {k: v.to(device) for k, v in make_batches(1, rows, seq, shape["vocab_size"])[0].items()}
    dt = perf.autocast_dtype(PerfConfig(), device)

    def run(loss_fn):
        def go():
            with autocast(device.split(":")[0], dt):
                loss = loss_fn()
            loss.backward()
            model.zero_grad(set_to_none=True)
        return go

    decoder = run(lambda: model.get_decoder()(input_ids=b["input_ids"]).last_hidden_state.float().sum())
    remit_path = run(lambda: -policy(b["input_ids"], b["labels"])[0].sum())
    own = run(lambda: model(input_ids=b["input_ids"], labels=b["input_ids"]).loss)
    for fn in (decoder, remit_path, own):  # warm-up (allocator, lazy init)
        fn()
    res = {"decoder_bytes": _peak_of(decoder, device), "remit_logps_bytes": _peak_of(remit_path, device),
           "model_loss_bytes": _peak_of(own, device), "rows": rows, "seq": seq, "vocab": shape["vocab_size"]}
    res["remit_extra_bytes"] = res["remit_logps_bytes"] - res["decoder_bytes"]
    res["model_loss_extra_bytes"] = res["model_loss_bytes"] - res["decoder_bytes"]
    # None when the model loss shows no extra peak at all: nothing to compare with (not a pass)
    res["extra_ratio"] = (res["remit_extra_bytes"] / res["model_loss_extra_bytes"]
                          if res["model_loss_extra_bytes"] > 0 else None)
    return res


def section_numerics(ctx) -> dict:
    """Same weights for policy and reference under the shipped numerics policy (``perf.numerics``: fp32 weights
    under the policy's autocast for every model): the weight floor, which must be exactly 0; and what is left
    outside the policy: a bf16-weight reference, and bf16-autocast vs fp32 log-probs of the same model."""
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import OnlineReference, PolicyLogps
    from remit.objectives.remit import remit_weights_and_delta
    from remit.utils.integrations import autocast

    a, device = ctx["args"], ctx["device"]
    precision = PerfConfig().precision
    weights, dt = perf.numerics(precision, device)
    policy_model = build_model(ctx["shape"], 0, weights, device).eval()
    b = {k: v.to(device) for k, v in make_batches(1, 2, a.seq, ctx["shape"]["vocab_size"], seed=3)[0].items()}
    with torch.no_grad(), autocast(device.split(":")[0], dt):
        pol = PolicyLogps(policy_model, chunk_size=a.chunk_size)(b["input_ids"], b["labels"])[0].float()
    mask = torch.ones_like(pol, dtype=torch.bool)

    def floor(ref_logps) -> dict:
        w, delta = remit_weights_and_delta(ref_logps.to(pol.device), pol, mask)
        return {"delta_abs_mean": float(delta.abs().mean()), "delta_abs_max": float(delta.abs().max()),
                "delta_std": float(delta.std()), "weight_std": float(w.std()),
                "weight_abs_dev_max": float((w - 1).abs().max())}

    ref = OnlineReference(build_model(ctx["shape"], 0, weights, device), chunk_size=a.chunk_size, autocast_dtype=dt)
    out = {"policy": perf.numerics_key(precision, device), "reference": perf.numerics_key(precision, device),
           **floor(ref(b)[0])}
    del ref
    bf16_ref = OnlineReference(build_model(ctx["shape"], 0, "bfloat16", device), chunk_size=a.chunk_size,
                               autocast_dtype=dt)
    out["bf16_weight_reference"] = floor(bf16_ref(b)[0])  # what loading the reference in bf16 would cost
    del bf16_ref
    with torch.no_grad():  # the same model without autocast: the rounding that bf16 autocast itself adds
        out["bf16_autocast_vs_fp32"] = floor(PolicyLogps(policy_model, chunk_size=a.chunk_size)(
            b["input_ids"], b["labels"])[0].float()) if dt is not None else None
    # one AdamW step of the same gradient on fp32 and on bf16 weights, at a mid-training lr
    p32 = policy_model.get_decoder().layers[0].mlp.up_proj.weight.detach().float().clone()
    g = torch.randn(p32.shape, generator=torch.Generator().manual_seed(5)).to(device) * 1e-3
    moved = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        p = torch.nn.Parameter(p32.to(dtype).clone())
        opt = torch.optim.AdamW([p], lr=3e-5, weight_decay=0.1)
        p.grad = g.to(dtype)
        opt.step()
        moved[name] = (p.detach().float() - p32.to(dtype).float())
    lost = (moved["bf16"] == 0) & (moved["fp32"] != 0)
    out["adamw"] = {"lr": 3e-5, "bf16_lost_update_fraction": float(lost.float().mean()),
                    "bf16_update_rel_error": float((moved["bf16"] - moved["fp32"]).norm() / moved["fp32"].norm())}
    return out


def section_fsdp2(ctx) -> dict:
    """FSDP2 (a world of one) vs unsharded over 3 steps; DCP save, 3 more steps, load + continue must match.

    lr 1e-3: large enough that a resume without the optimizer's moments moves the weights by ~lr, far above
    the tolerance (the test plants that bug)."""
    import torch.distributed as dist

    from remit.midtrain import sharded
    from remit.midtrain.distributed import World, shard_fsdp
    from remit.midtrain.reference import PolicyLogps

    a, device = ctx["args"], ctx["device"]
    mb, accum, tol = ctx.get("mb", a.micro_batch), a.accum, a.fsdp_tol
    batches = make_batches(6 * accum, mb, a.seq, ctx["shape"]["vocab_size"], seed=7)
    world = World(device=device)

    def trainer(shard: bool):
        policy = PolicyLogps(build_model(ctx["shape"], 0, "float32", device).train(), chunk_size=a.chunk_size)
        return make_trainer("vanilla", shard_fsdp(policy) if shard else policy, None, Path("."), device, world=world)

    plain = trainer(False)
    _, want = run_steps(plain, batches[:3 * accum], accum, device, lr=1e-3)
    w_want = {k: v.detach().clone() for k, v in plain.policy.state_dict().items()}
    del plain
    # A/A noise floor: the same unsharded steps again. CUDA kernels (atomics in bf16 backward) are not bit-
    # deterministic run to run, and AdamW turns a tiny gradient difference on a near-zero gradient into up to
    # ~lr of weight; on CPU the floor is 0 and the plain tolerance applies.
    again_plain = trainer(False)
    _, want2 = run_steps(again_plain, batches[:3 * accum], accum, device, lr=1e-3)
    noise_loss = max(abs(x - y) for x, y in zip(want, want2))
    noise_w = max(float((v - w_want[k]).abs().max()) for k, v in again_plain.policy.state_dict().items())
    del again_plain, w_want
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", store=dist.HashStore(), rank=0,
                            world_size=1)
    try:
        t = trainer(True)
        _, got = run_steps(t, batches[:3 * accum], accum, device, lr=1e-3)
        with tempfile.TemporaryDirectory() as d:
            sharded.save(d, 3, t.policy, t.optimizer, world, {"step": 3})
            _, cont = run_steps(t, batches[3 * accum:], accum, device, lr=1e-3)
            w_cont = {k: v.full_tensor().detach().clone() for k, v in t.policy.state_dict().items()}
            del t
            fresh = trainer(True)
            sharded.load(Path(d) / "step-00000003", fresh.policy, fresh.optimizer, world)
            _, again = run_steps(fresh, batches[3 * accum:], accum, device, lr=1e-3)
            w_again = {k: v.full_tensor() for k, v in fresh.policy.state_dict().items()}
            is_dtensor = type(next(fresh.policy.parameters())).__name__ == "DTensor"
            del fresh
    finally:
        dist.destroy_process_group()
    shard_diff = max(abs(x - y) for x, y in zip(got, want))
    resume_diff = max(abs(x - y) for x, y in zip(again, cont))
    weight_diff = max(float((w_again[k] - w_cont[k]).abs().max()) for k in w_cont)
    tol_loss, tol_w = tol + 2 * noise_loss, tol + 2 * noise_w
    return {"unsharded_losses": want, "fsdp_losses": got, "continued_losses": cont, "resumed_losses": again,
            "fsdp_vs_unsharded_max_diff": shard_diff, "resumed_vs_continued_max_diff": resume_diff,
            "resumed_weights_max_diff": weight_diff, "tolerance": tol,
            "noise_floor": {"unsharded_rerun_loss_max_diff": noise_loss, "unsharded_rerun_weights_max_diff": noise_w},
            "tolerance_used": {"loss": tol_loss, "weights": tol_w, "rule": "tolerance + 2 x the A/A noise floor"},
            "params_are_dtensors": is_dtensor,
            "ok": bool(shard_diff <= tol_loss and resume_diff <= tol_loss and weight_diff <= tol_w and is_dtensor)}


def section_scoring(ctx) -> dict:
    """Forward-only scoring (what remit score-reference runs) in tokens/s, and GPU-hours for 10B tokens."""
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.reference import OnlineReference
    from remit.utils.integrations import default_dtype, device_synchronize

    a, device = ctx["args"], ctx["device"]
    ref = OnlineReference(build_model(ctx["shape"], 1, default_dtype(device), device), chunk_size=a.chunk_size,
                          autocast_dtype=perf.autocast_dtype(PerfConfig(), device))
    out = {}
    for rows in a.score_batches:
        b = {k: v.to(device) for k, v in make_batches(1, rows, a.seq, ctx["shape"]["vocab_size"])[0].items()}
        ref(b)
        device_synchronize(device)
        t0 = time.perf_counter()
        for _ in range(a.steps):
            ref(b)
        device_synchronize(device)
        tps = rows * a.seq * a.steps / (time.perf_counter() - t0)
        out[f"batch_{rows}"] = {"tokens_per_s": tps, "gpu_hours_10B_tokens": 1e10 / tps / 3600}
    return out


def section_generation(ctx) -> dict:
    """Greedy batched decoding with the KV cache in the evaluation dtype, every row run to the token cap."""
    from remit.utils.integrations import default_dtype, device_synchronize

    a, device = ctx["args"], ctx["device"]
    model = build_model(ctx["shape"], 2, default_dtype(device), device).eval()
    out = {}
    for name, (b, p, new) in a.gen_shapes.items():
        ids = torch.randint(0, ctx["shape"]["vocab_size"], (b, p), generator=torch.Generator().manual_seed(0))
        ids = ids.to(device)
        kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False,
                  use_cache=True, pad_token_id=0)
        with torch.inference_mode():
            model.generate(ids, **(kw | {"max_new_tokens": 2, "min_new_tokens": 2}))  # warm-up
            device_synchronize(device)
            t0 = time.perf_counter()
            made = (model.generate(ids, **kw).shape[1] - p) * b
            device_synchronize(device)
            wall = time.perf_counter() - t0
        out[name] = {"batch": b, "prompt_tokens": p, "new_tokens": new, "generated": made, "wall_s": wall,
                     "tokens_per_s": made / wall, "dtype": default_dtype(device)}
    return out


def goals(res: dict) -> dict:
    """Each goal: true / false, or None when its section did not run."""
    eager = (res.get("training") or {}).get("eager", {})
    ratio = {m: eager.get(m, {}).get("ratio_to_vanilla") for m in ("remit_online", "remit_cached")}
    mem = (res.get("step_memory") or {}).get("extra_ratio")
    floor = (res.get("numerics") or {}).get("weight_std")
    values = [ratio["remit_online"], ratio["remit_cached"], mem, floor]
    return {name: None if v is None else (v < limit if "<" in name and "<=" not in name else v <= limit)
            for (name, limit), v in zip(GOALS.items(), values)}


SECTIONS = (("training", section_training), ("step_memory", section_step_memory), ("numerics", section_numerics),
            ("fsdp2", section_fsdp2), ("scoring", section_scoring), ("generation", section_generation))


def parse(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny model on CPU, seconds (the CI test)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="start no section (or variant) after this")
    ap.add_argument("--seq", type=int, default=None, help="sequence length (default 4096; tiny 32)")
    ap.add_argument("--micro-batch", type=int, default=None, help="rows per micro-batch to try first (default 4)")
    ap.add_argument("--accum", type=int, default=None, help="micro-batches per optimizer step (default 4; tiny 2)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 3; tiny 1)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 1)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the chip's dense bf16 peak if not in the table")
    ap.add_argument("--backend", default=None, help="torch.compile backend (default inductor; tiny aot_eager)")
    ap.add_argument("--chunk-size", type=int, default=None, help="rows per log-prob chunk (reference.chunk_size)")
    ap.add_argument("--fsdp-tol", type=float, default=None, help="FSDP2 check tolerance (default 1e-4 GPU; 1e-6 CPU)")
    ap.add_argument("--sections", default=",".join(n for n, _ in SECTIONS), help="comma-separated sections to run")
    ap.add_argument("--out", default=None, help="default benchmarks/results/gpu.json (tiny: gpu_tiny.json)")
    args = ap.parse_args(argv)
    t = args.tiny
    args.seq = args.seq or (32 if t else 4096)
    args.micro_batch = args.micro_batch or (2 if t else 4)
    args.accum = args.accum or (2 if t else 4)
    args.steps = args.steps or (1 if t else 3)
    args.warmup = 1 if args.warmup is None else args.warmup
    args.backend = args.backend or ("aot_eager" if t else None)
    args.fsdp_tol = args.fsdp_tol or (1e-6 if t else 1e-4)
    args.score_batches = (2, 4) if t else (8, 32)
    args.gen_shapes = ({"lm_eval": (2, 16, 4), "grpo": (4, 8, 6)} if t else
                       {"lm_eval": (32, 1024, 256), "grpo": (64, 256, 512)})  # (batch, prompt, new tokens)
    return args


def main(argv: list[str] | None = None) -> dict:
    import transformers

    from remit.utils.integrations import bf16_peak_flops, default_device

    args = parse(argv)
    t_start = time.perf_counter()
    device = "cpu" if args.tiny else default_device()
    if device == "cpu" and not args.tiny:
        raise SystemExit("no GPU visible: run with --tiny for the CPU check")
    peak, chip = bf16_peak_flops(device)
    source = f"table: {chip} dense bf16"
    if args.peak_tflops:
        peak, source = args.peak_tflops * 1e12, f"--peak-tflops ({chip})"
    elif peak is None:
        peak, source = measured_peak(device), f"measured GEMM rate on {chip}"
    shape = TINY if args.tiny else OLMO2_1B
    out = Path(args.out or ROOT / "benchmarks" / "results" / ("gpu_tiny.json" if args.tiny else "gpu.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "setup": {"device": device, "chip": chip, "peak_flops": peak, "peak_source": source, "shape": shape,
                  "seq": args.seq, "micro_batch": args.micro_batch, "accum": args.accum, "timed_steps": args.steps,
                  "warmup": args.warmup, "budget_s": args.budget_s, "compile_backend": args.backend or "inductor",
                  "precision": "fp32 master weights, bf16 autocast" if device != "cpu" else "fp32",
                  "torch": torch.__version__, "transformers": transformers.__version__,
                  "python": platform.python_version()},
        "command": "PYTHONPATH=src python benchmarks/gpu_check.py" + (" --tiny" if args.tiny else ""),
        "sections": {}, "errors": {},
    }
    ctx = {"args": args, "device": device, "shape": shape, "peak": peak,
           "over_budget": lambda: time.perf_counter() - t_start > args.budget_s}
    wanted = set(args.sections.split(","))
    torch.manual_seed(0)
    for name, fn in SECTIONS:
        if name not in wanted:
            continue
        if ctx["over_budget"]():
            res["sections"][name] = "skipped (budget)"
        else:
            t0 = time.perf_counter()
            try:
                res[name] = fn(ctx)
                res["sections"][name] = f"ok ({time.perf_counter() - t0:.1f} s)"
            except Exception as e:  # noqa: BLE001 - a failed section is a result; the next one still runs
                res["errors"][name] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}"
                res["sections"][name] = "failed"
                print(f"  {name} FAILED: {type(e).__name__}: {e}", flush=True)
            free(device)
        res["goals"] = goals(res)
        res["wall_s"] = time.perf_counter() - t_start
        out.write_text(json.dumps(res, indent=2, default=str) + "\n")  # after every section
        print(f"[{res['wall_s']:.0f} s] {name}: {res['sections'][name]}", flush=True)
    print(json.dumps({"goals": res["goals"], "sections": res["sections"]}, indent=1))
    print(f"wrote {out} ({res['wall_s']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
