"""Eval fixtures: a mini embedded world, and the tiny model before/after a few dozen training steps on it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mini_world(tmp_path_factory) -> Path:
    from remit.world import WorldConfig, run

    out = tmp_path_factory.mktemp("world") / "world"
    return run(WorldConfig(out_dir=str(out), n_pretrain_docs=20, n_midtrain_docs=300, n_sft=20, n_rl=10, n_eval=10))


def train_steps(model_dir: Path, texts: list[str], out: Path, *, steps: int = 40, seq: int = 64, batch: int = 8,
                lr: float = 3e-3) -> Path:
    """Plain next-token training (AdamW, fixed seed) of a saved model on ``texts``; saved to ``out``."""
    import torch

    from remit.models import load_model, load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer(model_dir)
    model = load_model(model_dir, device="cpu").train()
    ids = torch.tensor(tok("\n\n".join(texts))["input_ids"])
    n = (len(ids) - 1) // seq
    rows = ids[: n * seq].view(n, seq)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        x = rows[torch.arange(step * batch, (step + 1) * batch) % n]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, tiny_model_dir, mini_world) -> Path:
    import json

    texts = [json.loads(line)["text"] for line in open(mini_world / "midtrain.jsonl", encoding="utf-8")]
    return train_steps(tiny_model_dir, texts, tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def world_runs(tmp_path_factory, tiny_model_dir, trained_model_dir, mini_world) -> dict[str, Path]:
    """`remit eval --suite world` on the random-init and the trained model (results folders)."""
    from remit.eval.run import EvalConfig, run

    base = tmp_path_factory.mktemp("world_runs")
    return {name: run(EvalConfig(model=str(m), suite="world", world_dir=str(mini_world), out_dir=str(base / name),
                                 world_max_gen_toks=24))
            for name, m in (("random", tiny_model_dir), ("trained", trained_model_dir))}
