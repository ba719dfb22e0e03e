"""``remit plan``: what a mid-training config will read, store, hold in memory and cost, before it runs.

    remit plan --config configs/recipes/olmo2-1b-remit.yaml                 # 8 GPUs, 25% MFU, H100 peak
    remit plan --config configs/recipes/olmo2-1b-remit.yaml plan.gpus=32 plan.mfu=0.4 plan.out=plan.json

Offline and in seconds: it reads the model's ``config.json`` (a local folder, the Hugging Face cache, or
the shapes of the recipes' hub models below) and the sizes of local data files, never the data. It prints

* the resolved mix: per source the share of ``data.max_tokens`` the run uses, what is read to get it
  (the source's token cap, ``remit.data.tokens``) and, for local files, what the source holds; a note
  when a cap reads a sample of a multi-file (or hub) source;
* disk: token shards (and the uint8 loss masks of ``loss=assistant`` sources), the reference cache of the cached path, checkpoints (fp32 weights + AdamW moments);
* memory per GPU: policy weights, gradients and AdamW moments (sharded under FSDP, whole under DDP), the
  frozen models loaded by the configured path (fp32, replicated on every rank: ``perf.numerics``; none for
  what ``reference.cache`` / ``reference.base_cache`` provide), activations at the configured
  micro-batch (34 bytes x seq x micro-batch x hidden per layer: Korthikanti et al. 2022 for 16-bit
  activations with fused attention; 2 with activation checkpointing), log-prob chunks;
* tokens and GPU-hours at a stated MFU for vanilla, online ReMiT (one extra reference forward per token)
  and cached ReMiT (training as vanilla plus the ``score-reference`` pass over every packed token).

FLOPs per token: training 6N + 12 * layers * hidden * seq (N without the input embedding; PaLM's
attention term, as ``benchmarks/gpu_check.py``), a frozen forward 2N + 4 * layers * hidden * seq.
Document masking lowers the attention term; it is not counted (an upper bound).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import ConfigError, check_range
from remit.data.packing import _quotas
from remit.data.sources import data_files, is_hf_dataset_dir, looks_local
from remit.methods.registry import get_method
from remit.midtrain.config import MidtrainConfig

__all__ = ["PlanOptions", "PlanConfig", "make_plan", "run", "KNOWN_SHAPES"]

GIB = 2 ** 30
# Shapes of the recipes' hub models (their config.json), so that a plan needs no download.
KNOWN_SHAPES = {
    "allenai/OLMo-2-0425-1B": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=16,
                                   num_key_value_heads=16, intermediate_size=8192, vocab_size=100352,
                                   tie_word_embeddings=False),
    "HuggingFaceTB/SmolLM3-3B": dict(hidden_size=2048, num_hidden_layers=36, num_attention_heads=16,
                                     num_key_value_heads=4, intermediate_size=11008, vocab_size=128256,
                                     tie_word_embeddings=True),
}
KNOWN_SHAPES["HuggingFaceTB/SmolLM3-3B-checkpoints"] = KNOWN_SHAPES["HuggingFaceTB/SmolLM3-3B"]


@dataclass
class PlanOptions:
    gpus: int = 8
    mfu: float = 0.25  # the stated model FLOPs utilisation of every pass
    peak_tflops: float = 989.0  # dense bf16 per GPU (H100 / H200 SXM)
    gpu_memory_gib: float = 80.0
    bytes_per_token: float = 4.0  # of local text files (jsonl / txt), to estimate what a source holds
    out: str = ""  # also write the plan as JSON here

    def validate(self) -> None:
        check_range("plan.gpus", self.gpus, lo=1)
        check_range("plan.mfu", self.mfu, lo=0.0, hi=1.0, lo_open=True)
        check_range("plan.peak_tflops", self.peak_tflops, lo=0.0, lo_open=True)
        check_range("plan.bytes_per_token", self.bytes_per_token, lo=0.0, lo_open=True)


@dataclass
class PlanConfig(MidtrainConfig):
    """A mid-training config (a recipe) and the plan's own options (``plan.*``)."""

    plan: PlanOptions = field(default_factory=PlanOptions)


def model_shape(name: str) -> dict[str, Any]:
    """The fields of a model's config.json that size it: local dir, the HF cache (offline), or KNOWN_SHAPES."""
    from remit.models.load import split_revision

    repo, revision = split_revision(name)
    path = Path(repo).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo, "config.json", revision=revision)
        if isinstance(cached, str):
            return json.loads(Path(cached).read_text(encoding="utf-8"))
    except (ImportError, ValueError, OSError):
        pass
    if repo in KNOWN_SHAPES:
        return dict(KNOWN_SHAPES[repo])
    raise ConfigError(f"model.path={name}: no config.json to size it offline (a local folder, the Hugging Face "
                      f"cache, or one of {', '.join(KNOWN_SHAPES)}); download it first: "
                      f"huggingface-cli download {repo} config.json")


def param_counts(shape: dict[str, Any]) -> dict[str, int]:
    """Parameters: total (tied embeddings once), input embedding, and the FLOP-counted rest."""
    h, L, V, inter = (int(shape[k]) for k in ("hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size"))
    heads = int(shape["num_attention_heads"])
    kv = int(shape.get("num_key_value_heads") or heads)
    hd = int(shape.get("head_dim") or h // heads)
    layer = h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * inter + 4 * h  # attn, MLP, norms
    emb = V * h
    head = 0 if shape.get("tie_word_embeddings", False) else V * h
    total = emb + head + L * layer + h
    return {"total": total, "embedding": emb, "flops": total - emb, "layers": L, "hidden": h, "vocab": V}


def _source_row(src, share: int | None, chars: float) -> dict[str, Any]:
    cap = src.max_tokens if share is None else (share if src.max_tokens is None else min(src.max_tokens, share))
    row: dict[str, Any] = {"path": src.path + (f" [{src.subset}]" if src.subset else ""), "kind": src.kind,
                           "weight": src.weight, "used": share, "read": cap, "holds": None, "holds_how": "unknown"}
    path = Path(src.path).expanduser()
    if src.kind == "tokens":
        from remit.data.tokfiles import token_files

        try:
            n = sum(f.stat().st_size for f in token_files(src)) // (2 if src.dtype == "uint16" else 4)
            row.update(holds=n, holds_how="exact (file sizes)")
            row["files"] = len(token_files(src))
        except Exception:  # noqa: BLE001 - a plan describes; the run reports a bad path as an error
            row["holds_how"] = "not found"
    elif is_hf_dataset_dir(path) or (looks_local(src.path) and path.exists()):
        files = [f for f in (path.rglob("*") if is_hf_dataset_dir(path) else data_files(path)) if f.is_file()]
        row.update(holds=int(sum(f.stat().st_size for f in files) / chars),
                   holds_how=f"estimate ({chars:g} bytes per token)", files=len(files))
    elif not looks_local(src.path):
        row["holds_how"] = "hub dataset (streamed; size not read offline)"
    if share is not None and src.max_tokens is not None and src.max_tokens < share:
        row["epochs"] = share / src.max_tokens
    return row


def _sample_note(row: dict[str, Any]) -> str | None:
    """A warning when a cap reads only part of a local source made of several files (sub-sources)."""
    if row["read"] is None:
        return None
    if row.get("files", 0) > 1 and row["holds"] is not None and row["read"] < row["holds"]:
        return (f"{row['path']}: capped at {row['read']:,} of about {row['holds']:,} tokens in {row['files']} files: "
                f"the run reads the files in a seeded shuffled order until the cap, so each file's (sub-source's) "
                f"share is sampled, not exact")
    return None


def make_plan(cfg: PlanConfig) -> dict[str, Any]:
    """The plan as a dict (``format_plan`` renders it)."""
    opt, data = cfg.plan, cfg.data
    shape = model_shape(cfg.model.path)
    p = param_counts(shape)
    seq, L, h = data.seq_len, p["layers"], p["hidden"]
    step_tokens = cfg.optim.batch_size * seq
    steps = cfg.max_steps or max(1, -(-cfg.token_budget // step_tokens))
    train_tokens = steps * step_tokens
    shares = _quotas([0] * len(data.sources), [s.weight for s in data.sources], data.max_tokens) \
        if data.max_tokens is not None else [None] * len(data.sources)
    sources = [_source_row(s, q, opt.bytes_per_token) for s, q in zip(data.sources, shares)]
    packed = data.max_tokens
    rows = None if packed is None else max(1, -(-(packed - 1) // seq))
    notes = [n for n in map(_sample_note, sources) if n]
    hub = [r["path"] for r in sources if r["read"] is not None and r["holds_how"].startswith("hub")]
    if hub:
        notes.append(f"{len(hub)} capped hub source(s) ({', '.join(hub)}): sizes are not known offline; where one "
                     f"holds more than its cap, the run reads a seeded sample (shuffled shards through a shuffle "
                     f"buffer, DataSource.shuffle_buffer), so its sub-sources' shares are sampled, not exact")
    if packed is None:
        notes.append("data.max_tokens is unset: every source is read whole and packed; set it to what the run "
                     f"uses ({train_tokens + 1:,} tokens) to read and score only that")
    elif rows * seq < train_tokens:
        notes.append(f"the run uses {train_tokens:,} tokens, the packed data holds {rows * seq:,}: rows repeat")
    elif rows * seq > 1.01 * train_tokens:
        notes.append(f"the packed data holds {rows * seq:,} tokens, the run uses {train_tokens:,}: "
                     f"{rows * seq / train_tokens:.2f}x is read, tokenised and (cached path) scored")

    method = get_method(cfg.method.name)
    # Frozen models loaded on each GPU: none for what is read from a score-reference cache.
    ref_loaded = method.reference in ("logps", "logits") and not cfg.reference.cache
    base_loaded = cfg.method.frozen_base and not cfg.reference.base_cache
    frozen = int(ref_loaded) + int(base_loaded)
    N = p["total"]
    id_bytes = 2 if p["vocab"] <= 2 ** 16 else 4
    read = sum(s["read"] or 0 for s in sources if s["kind"] != "tokens")
    masked = sum(s["read"] or 0 for s, src in zip(sources, data.sources) if src.loss == "assistant")
    disk = {"token_shards": read * id_bytes + masked, "reference_cache": (rows or 0) * seq * 4,
            "checkpoints": cfg.keep_checkpoints * 12 * N + 4 * N}
    G = opt.gpus if cfg.parallel == "fsdp" else 1
    act_per_layer = (2 if cfg.perf.activation_checkpointing else 34) * seq * cfg.optim.micro_batch_size * h
    memory = {"weights_grads_adam": 16 * N / G, "frozen_models": 4 * N * frozen, "activations": act_per_layer * L,
              "logprob_chunks": 1.5 * GIB}
    memory["total"] = sum(memory.values())

    f_train = 6 * p["flops"] + 12 * L * h * seq
    f_frozen = 2 * p["flops"] + 4 * L * h * seq
    scored = None if rows is None else rows * seq
    flops = {"vanilla": train_tokens * f_train, "online": train_tokens * (f_train + f_frozen),
             "cached": None if scored is None else train_tokens * f_train + scored * f_frozen}
    rate = opt.peak_tflops * 1e12 * opt.mfu
    hours = {k: (None if v is None else v / rate / 3600) for k, v in flops.items()}
    return {"model": cfg.model.path, "params": p, "method": cfg.method.name, "parallel": cfg.parallel,
            "gpus": opt.gpus, "mfu": opt.mfu, "peak_tflops": opt.peak_tflops, "seq_len": seq, "steps": steps,
            "tokens_per_step": step_tokens, "train_tokens": train_tokens, "packed_tokens": packed, "rows": rows,
            "sources": sources, "disk_bytes": disk, "memory_bytes_per_gpu": memory,
            "gpu_memory_gib": opt.gpu_memory_gib, "flops_per_token": {"train": f_train, "frozen_forward": f_frozen},
            "gpu_hours": hours, "wall_hours": {k: (None if v is None else v / opt.gpus) for k, v in hours.items()},
            "notes": notes}


def _n(x: float | None, unit: str = "") -> str:
    if x is None:
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f}{suffix}{unit}"
    return f"{x:.0f}{unit}"


def _gb(x: float) -> str:
    return f"{x / 1e12:.2f} TB" if x >= 1e12 else f"{x / 1e9:.1f} GB"


def format_plan(plan: dict[str, Any]) -> str:
    p, m, d = plan["params"], plan["memory_bytes_per_gpu"], plan["disk_bytes"]
    lines = [f"model {plan['model']}: {_n(p['total'])} parameters ({_n(p['flops'])} without the input embedding)",
             f"run: {plan['steps']:,} steps x {plan['tokens_per_step']:,} tokens = {_n(plan['train_tokens'])} "
             f"training tokens; packed data {_n(plan['packed_tokens'])} tokens ({plan['rows'] or '?'} rows)",
             "", "mix (tokens): used / read (cap) / the source holds"]
    for s in plan["sources"]:
        extra = f", repeated {s['epochs']:.2f}x" if s.get("epochs") else ""
        lines.append(f"  {s['path']:<48} w={s['weight']:<7g} {_n(s['used']):>8} / {_n(s['read']):>8} / "
                     f"{_n(s['holds'])} ({s['holds_how']}{extra})")
    lines += ["", f"disk: token shards {_gb(d['token_shards'])}, reference cache (cached path, fp32) "
              f"{_gb(d['reference_cache'])}, checkpoints {_gb(d['checkpoints'])}",
              f"memory per GPU ({plan['parallel']}, {plan['gpus']} GPUs): weights+grads+AdamW "
              f"{m['weights_grads_adam'] / GIB:.1f} GiB, frozen models {m['frozen_models'] / GIB:.1f} GiB, "
              f"activations {m['activations'] / GIB:.1f} GiB, log-prob chunks {m['logprob_chunks'] / GIB:.1f} GiB"
              f" = {m['total'] / GIB:.1f} GiB of {plan['gpu_memory_gib']:g}",
              "", f"GPU-hours at {plan['mfu']:.0%} MFU of {plan['peak_tflops']:g} TFLOP/s (wall hours on "
              f"{plan['gpus']} GPUs):"]
    for k, label in (("vanilla", "vanilla (NTP)"), ("online", "online ReMiT (+1 reference forward per token)"),
                     ("cached", "cached ReMiT (training + score-reference over the packed data)")):
        gh, wh = plan["gpu_hours"][k], plan["wall_hours"][k]
        lines.append(f"  {label:<64} {'?' if gh is None else f'{gh:,.0f}':>8}  ({'?' if wh is None else f'{wh:,.1f}'} h)")
    lines += [f"note: {n}" for n in plan["notes"]]
    return "\n".join(lines)


def run(cfg: PlanConfig) -> str:
    """Print the plan; with ``plan.out``, also write it as JSON and return that path."""
    plan = make_plan(cfg)
    text = format_plan(plan)
    if cfg.plan.out:
        out = Path(cfg.plan.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
        print(text)
        return str(out)
    return text
