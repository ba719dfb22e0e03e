"""``remit analyze shift``: how far each checkpoint's token distribution is from a target model.

On a fixed probe set of texts, for every model ``m`` in ``models`` (mean over all scored tokens):

- ``kl_to_target``  = mean_t KL(p_target || p_m), over the full vocabulary;
- ``logp_gap``      = mean_t [log p_target(x_t) - log p_m(x_t)] on the data tokens;
- ``kl_from_origin`` = mean_t KL(p_m || p_origin): how far ``m`` moved from the starting point.

With models = pre-annealing, vanilla base, ReMiT base, SFT, RL and target = the RL model, this is
the paper's training-dynamics view: how much annealing moves the distribution (and towards the RL
model) compared with what RL itself changes. All in fp32; the logits are produced in chunks over
rows and vocabulary (:mod:`remit.report.lm`), and only one model is in memory at a time
(plus the target's and origin's hidden states and LM heads).

    remit analyze shift runs/demo/pretrain runs/demo/b0 runs/demo/b1 runs/demo/r0_sft runs/demo/r0_grpo \\
        probe_file=data/midtrain.jsonl out=shift/

``target`` defaults to the last model, ``origin`` to the first (either may be a path, or a
label/path from ``models``). Writes ``out/shift.json`` (the numbers) and ``out/shift.png``.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path

from remit.config import ConfigError, check_range, save_config
from remit.models import check_compatible
from remit.utils.io import atomic_write_json


@dataclass
class ShiftConfig:
    models: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # display names (default: folder names)
    target: str | None = None  # the model to measure distance to (default: the last of models)
    origin: str | None = None  # the starting point (default: the first of models)
    probe_file: str | None = None
    probe_texts: list[str] = field(default_factory=list)
    max_texts: int = 32
    max_length: int = 256
    batch_size: int = 8
    row_chunk: int = 1024
    vocab_chunk: int = 8192
    device: str | None = None
    dtype: str | None = None
    out: str = "shift"

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("models: give at least one model (remit analyze shift DIR [DIR ...])")
        if self.labels and len(self.labels) != len(self.models):
            raise ConfigError(f"labels: {len(self.labels)} labels for {len(self.models)} models")
        if (self.probe_file is None) == (not self.probe_texts):
            raise ConfigError("give exactly one of probe_file=... or probe_texts=[...]")
        for k in ("max_texts", "batch_size", "row_chunk", "vocab_chunk"):
            check_range(k, getattr(self, k), 1)
        check_range("max_length", self.max_length, 2)


def _resolve(ref: str | None, paths: list[str], labels: list[str], default: int) -> tuple[str, str]:
    """(path, label) of a target/origin given as a label, one of the paths, or a new path."""
    if ref is None:
        return paths[default], labels[default]
    if ref in labels:
        i = labels.index(ref)
        return paths[i], labels[i]
    if ref in paths:
        i = paths.index(ref)
        return paths[i], labels[i]
    return ref, Path(ref).name or ref


def compute_shift(models: list[str], texts: list[str], *, labels: list[str] | None = None, target: str | None = None,
                  origin: str | None = None, max_length: int = 256, batch_size: int = 8, row_chunk: int = 1024,
                  vocab_chunk: int = 8192, device: str | None = None, dtype: str | None = None) -> dict:
    """The numbers of ``shift.json`` (see the module docstring)."""
    from remit.report.lm import detach_states, encode_texts, hidden_states, kl_per_token, load_pair, target_logps

    paths = [str(m) for m in models]
    labels = list(labels) if labels else [Path(p).name or p for p in paths]
    tpath, tlabel = _resolve(target, paths, labels, len(paths) - 1)
    opath, olabel = _resolve(origin, paths, labels, 0)
    for p in dict.fromkeys(paths + [opath]):
        if p != tpath:
            check_compatible(p, tpath)
    cache: dict[str, object] = {}
    enc = None

    def states(path: str):
        nonlocal enc
        if path in cache:
            return cache[path]
        model, tok = load_pair(path, device=device, dtype=dtype)
        if enc is None:
            enc = encode_texts(tok, texts, max_length=max_length)
        s = detach_states(hidden_states(model, enc, batch_size=batch_size))
        del model
        gc.collect()
        return s

    kw = dict(row_chunk=row_chunk, vocab_chunk=vocab_chunk)
    t_states = cache[tpath] = states(tpath)
    o_states = cache[opath] = states(opath)
    lp_t = target_logps(t_states, enc.targets, **kw)
    rows = []
    for path, label in zip(paths, labels):
        s = states(path)
        lp = target_logps(s, enc.targets, **kw)
        rows.append({
            "label": label, "path": path,
            "kl_to_target": float(kl_per_token(t_states, s, **kw).double().mean()),
            "logp_gap": float((lp_t - lp).double().mean()),
            "mean_logp": float(lp.double().mean()),
            "kl_from_origin": float(kl_per_token(s, o_states, **kw).double().mean()),
        })
    return {"target": tlabel, "target_path": tpath, "origin": olabel, "origin_path": opath,
            "n_texts": len(texts), "n_tokens": int(enc.targets.numel()), "max_length": max_length,
            "target_mean_logp": float(lp_t.double().mean()), "models": rows}


def plot_shift(result: dict, path: str | Path) -> Path:
    """Three panels over the checkpoints: KL to the target, log-prob gap, KL from the origin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["models"]
    names = [r["label"] for r in rows]
    colors = plt.cm.tab10.colors
    panels = [("kl_to_target", f"KL(p_{result['target']} || p_ckpt)", f"distance to the target ({result['target']})"),
              ("logp_gap", f"log p_{result['target']} - log p_ckpt", "log-prob gap on the data tokens"),
              ("kl_from_origin", f"KL(p_ckpt || p_{result['origin']})",
               f"distance moved from the origin ({result['origin']})")]
    fig, axes = plt.subplots(1, 3, figsize=(max(12, 1.6 * len(names) * 3), 4.4))
    for ax, (key, ylabel, title) in zip(axes, panels):
        vals = [r[key] for r in rows]
        bars = ax.bar(range(len(names)), vals, color=[colors[i % 10] for i in range(len(names))])
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, v), ha="center",
                        va="bottom" if v >= 0 else "top", fontsize=8, xytext=(0, 2 if v >= 0 else -2),
                        textcoords="offset points")
        ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=9)
        ax.set_ylabel(ylabel + " (nats/token)", fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xlabel("checkpoint")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Distribution shift on {result['n_tokens']} probe tokens ({result['n_texts']} texts)", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_probe_texts(cfg: ShiftConfig) -> list[str]:
    from remit.report.lm import read_text_file

    texts = list(cfg.probe_texts) if cfg.probe_texts else read_text_file(cfg.probe_file, limit=cfg.max_texts)
    return texts[:cfg.max_texts]


def run(cfg: ShiftConfig) -> Path:
    """Write ``out/shift.json`` and ``out/shift.png``; returns ``out``."""
    out = Path(cfg.out)
    result = compute_shift(cfg.models, load_probe_texts(cfg), labels=cfg.labels or None, target=cfg.target,
                           origin=cfg.origin, max_length=cfg.max_length, batch_size=cfg.batch_size,
                           row_chunk=cfg.row_chunk, vocab_chunk=cfg.vocab_chunk, device=cfg.device, dtype=cfg.dtype)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "shift.json", result)
    plot_shift(result, out / "shift.png")
    save_config(cfg, out / "shift.config.yaml")
    return out


def summary_lines(result: dict) -> list[str]:
    """Plain-language reading of the numbers (used by the report)."""
    return [f"- {r['label']}: KL to {result['target']} = {r['kl_to_target']:.4f}, log-prob gap = "
            f"{r['logp_gap']:+.4f}, KL from {result['origin']} = {r['kl_from_origin']:.4f}" for r in result["models"]]
