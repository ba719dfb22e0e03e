"""Fixtures for the report tests: five tiny checkpoints sharing a tokenizer, and a synthetic run folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

ROLES = ("pre", "vanilla", "remit", "sft", "rl")


@pytest.fixture(scope="session")
def role_models(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """Random-init tiny Llamas (hidden 32), one seed per role; 'rl_copy' has the same weights as 'rl'."""
    from remit.models import ModelConfig

    root = tmp_path_factory.mktemp("role_models")
    out = {}
    for seed, role in enumerate(ROLES + ("rl_copy",)):
        model = ModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=4).build(
            tiny_tokenizer, seed=ROLES.index("rl") if role == "rl_copy" else seed)
        model.save_pretrained(root / role)
        tiny_tokenizer.save_pretrained(root / role)
        out[role] = root / role
    return out


@pytest.fixture
def make_run():
    """``make_run(root, models, remit_better=..., texts=...)``: a synthetic run folder."""
    return _make_run


def _results(model: str, per_task: dict[str, list[float]]) -> dict:
    tasks = {t: {"exact_match": {"value": sum(v) / len(v), "stderr": 0.01, "n": len(v)}} for t, v in per_task.items()}
    return {"model": model, "suite": "world", "tasks": tasks,
            "per_example": {t: {"exact_match": v} for t, v in per_task.items()}}


def _scores(p: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def _make_run(root: Path, models: dict[str, Path], *, remit_better: bool, texts: list[str]) -> Path:
    """A run folder as the flywheel writes it, with fake evals where ReMiT is clearly better (or worse)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "midtrain.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    hi, lo = (0.7, 0.3) if remit_better else (0.3, 0.7)
    evals = {"pre": 0.2, "vanilla": lo, "remit": hi, "sft": lo, "rl": lo + 0.05, "remit_rl": hi + 0.05}
    for label, p in evals.items():
        d = root / f"eval-{label}"
        d.mkdir(exist_ok=True)
        res = _results(label, {"arith": _scores(p, 200, 1), "words": _scores(p, 200, 2)})
        (d / "results.json").write_text(json.dumps(res))
    stages = {"pretrain": {"path": "pretrain", "kind": "pretrain", "wall_s": 30.0},
              "midtrain-vanilla": {"path": "midtrain-vanilla", "kind": "midtrain", "method": "vanilla", "round": 0,
                                   "wall_s": 20.0},
              "midtrain-remit": {"path": "midtrain-remit", "kind": "midtrain", "method": "remit", "round": 1,
                                 "wall_s": 26.0}}
    for st in stages.values():
        d = root / st["path"]
        d.mkdir(exist_ok=True)
        weighted = st.get("method") == "remit"
        rows = []
        for step in range(1, 21):
            r = {"step": step, "tokens": step * 512, "loss": 6.0 - 0.1 * step, "lr": 1e-3 * (1 - step / 21),
                 "tokens_per_s": 8000.0}
            if weighted:
                hist = [int(100 * (1 + (b - 4.5) ** 2 / (1 + step))) for b in range(10)]
                r.update(w_mean=1.0, w_std=0.01 * step, w_frac_hi=0.002 * step, w_frac_lo=0.001 * step, w_hist=hist)
            rows.append(r)
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "manifest.json").write_text(json.dumps({"stage": st["kind"], "tokens": 10240,
                                                     "config": {"method": {"epsilon": 0.2}}}))
    # A post-training chain whose stages recorded per-prompt held-out rewards: SFT 30%, GRPO 60%.
    post = root / "post-vanilla"
    chain_stages = {}
    sft_vals = _scores(0.3, 200, 3)
    grpo_vals = [1.0 if v or i % 7 < 3 else 0.0 for i, v in enumerate(sft_vals)]
    for name, pre, vals in (("sft", None, sft_vals), ("grpo", sft_vals, grpo_vals)):
        (post / name).mkdir(parents=True, exist_ok=True)
        ev = {"pre": None if pre is None else sum(pre) / len(pre), "post": sum(vals) / len(vals), "n": len(vals),
              "pre_values": pre, "post_values": vals}
        (post / name / "manifest.json").write_text(json.dumps({"stage": name, "eval": ev,
                                                                "frac_reward_zero_std": 0.25}))
        chain_stages[name] = {"out": str(post / name)}
    (post / "manifest.json").write_text(json.dumps({"stage": "posttrain", "stages": chain_stages}))
    stages["post-vanilla"] = {"path": "post-vanilla", "kind": "posttrain", "label": "vanilla+post", "wall_s": 0.0}
    manifest = {
        "name": "synthetic", "stages": stages,
        "models": {"pre": str(models["pre"]), "vanilla": str(models["vanilla"]), "remit": str(models["remit"]),
                   "sft": str(models["sft"]), "rl": str(models["rl"]), "remit_rl": "missing-model"},
        "evals": {label: f"eval-{label}" for label in evals},
        "roles": {"pre_annealing": "pre", "vanilla": "vanilla", "remit": "remit", "sft": "sft", "rl": "rl",
                  "reference": "rl", "remit_rl": "remit_rl"},
        "data": {"midtrain": "data/midtrain.jsonl"},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root
