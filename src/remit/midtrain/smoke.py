"""``remit midtrain --config <recipe> --smoke``: the recipe's code paths on this CPU in seconds.

    remit midtrain --config configs/recipes/olmo2-1b-remit.yaml --smoke     # -> <out_dir>-smoke/out

The recipe is kept (method, schedule, precision, document masking, parallel mode, source kinds, weights,
caps) and scaled down: a tiny random model of the same architecture class as ``model.path`` (its
``config.json`` or ``remit.midtrain.plan.KNOWN_SHAPES``; tied embeddings as the real one; its output
layer padded past the tokenizer as OLMo-2's is), a small tokenizer with a chat template, and for every
source a local fixture with the same schema (the same text / template fields, a ``messages`` list for a
chat source, uint token files for a token source), 32-token rows and ``data.max_tokens`` scaled to what
3 steps use (so every source is read up to a cap). A reference (a second tiny model) and, for
``reference.cache``, a ``score-reference`` cache are made the same way. It trains the 3-step run, stopped
after step 2 with a checkpoint (``engine.train``'s ``stop_after``: the schedule stays the 3-step one),
resumes it to step 3 (``resume=true``; the manifest's ``resumed_from_step`` is 2) and returns the output
folder.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

from remit.config import ConfigError
from remit.data.sources import DataSource
from remit.midtrain.config import MidtrainConfig

__all__ = ["smoke_config", "run_smoke", "SMOKE_STEPS"]

SMOKE_STEPS = 3
SEQ = 32
_ARCH = {"llama": "llama", "olmo2": "olmo2", "smollm3": "smollm3", "qwen3": "qwen3"}


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names, things = ["Ann", "Bob", "Cara", "Dan", "Eve"], ["apples", "books", "coins", "pens", "cups"]
    out = []
    for i in range(n):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        out.append(f"{rng.choice(names)} has {a} {rng.choice(things)} and gets {b} more, so {a} + {b} = {a + b}."
                   + (" The sun is warm today." if i % 3 == 0 else ""))
    return out


def _arch(path: str) -> tuple[str, bool]:
    from remit.midtrain.plan import model_shape

    shape = model_shape(path)
    kind = shape.get("model_type") or {"allenai/OLMo-2-0425-1B": "olmo2"}.get(path.split("@")[0], "")
    if not kind:
        kind = "smollm3" if "SmolLM3" in path else "llama"
    if kind not in _ARCH:
        raise ConfigError(f"model.path={path}: model_type {kind!r} has no tiny counterpart for --smoke "
                          f"(supported: {', '.join(_ARCH)})")
    return _ARCH[kind], bool(shape.get("tie_word_embeddings", False))


def _fixture(src: DataSource, i: int, work: Path, tokenizer) -> DataSource:
    """A local file with the schema of ``src`` (its fields, its kind), 200 documents."""
    import numpy as np

    texts = _texts(200, seed=i)
    if src.kind == "tokens":
        from remit.data.tokens import encode_texts

        ids = [t for x in encode_texts(tokenizer, texts) for t in (*x, tokenizer.eos_token_id)]
        path = work / "data" / f"source{i}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.asarray(ids, dtype=src.dtype).tofile(path)
        return dataclasses.replace(src, path=str(path), subset=None, eos_token_id=None)
    path = work / "data" / f"source{i}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for j, text in enumerate(texts):
            if src.kind == "chat":
                q, _, a = text.partition(", so ")
                record = {src.messages_field: [{"role": "user", "content": q + "?"},
                                               {"role": "assistant", "content": a}], "source": "smoke"}
            else:
                record = {name: text if k == 0 else f"{name} {j}" for k, name in enumerate(src.fields())}
            f.write(json.dumps(record) + "\n")
    return dataclasses.replace(src, path=str(path), subset=None, split="train")


def smoke_config(cfg: MidtrainConfig, work: Path) -> MidtrainConfig:
    """``cfg`` scaled down to tiny models and local fixtures under ``work`` (written here)."""
    from remit.models import ModelConfig, train_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    arch, tied = _arch(cfg.model.path)
    tok = train_tokenizer(_texts(400, seed=99), 384, out_dir=work / "tokenizer")
    shape = ModelConfig(arch=arch, hidden_size=32, num_layers=2, num_heads=4, tie_word_embeddings=tied,
                        pad_vocab_to=64, max_position_embeddings=4 * SEQ)
    models = {}
    for name, seed in (("model", 0), ("reference", 1)):
        models[name] = work / name
        m = shape.build(tok, seed=seed)
        m.save_pretrained(models[name])
        tok.save_pretrained(models[name])
    batch, micro = 4, 2
    used = SMOKE_STEPS * batch * SEQ + 1
    sources = [_fixture(s, i, work, tok) for i, s in enumerate(cfg.data.sources)]
    data = dataclasses.replace(cfg.data, sources=sources, seq_len=SEQ, cache_dir=str(work / "cache"), num_proc=1,
                               max_tokens=used if cfg.data.max_tokens is not None else None)
    ref = dataclasses.replace(cfg.reference, path=str(models["reference"]) if cfg.reference.path else None,
                              cache=None, base_cache=None)
    small = dataclasses.replace(
        cfg, out_dir=str(work / "out"), model=dataclasses.replace(cfg.model, path=str(models["model"]), tokenizer=None),
        data=data, reference=ref, optim=dataclasses.replace(cfg.optim, batch_size=batch, micro_batch_size=micro),
        token_budget=SMOKE_STEPS * batch * SEQ, max_steps=SMOKE_STEPS, checkpoint_every=2, keep_checkpoints=2,
        logging=dataclasses.replace(cfg.logging, every=1, tensorboard=False, wandb=False, progress=False),
        device="cpu", smoke=False, resume=False, overwrite=True)
    if cfg.reference.cache is not None or cfg.reference.base_cache is not None:
        small = dataclasses.replace(small, reference=dataclasses.replace(
            small.reference, cache=_score(small, str(models["reference"]), work / "ref_cache")
            if cfg.reference.cache is not None else None,
            base_cache=_score(small, str(models["model"]), work / "base_cache")
            if cfg.reference.base_cache is not None else None))
    return small


def _score(cfg: MidtrainConfig, model: str, out: Path) -> str:
    from remit.midtrain import score

    return str(score.run(score.ScoreConfig(reference=model, data=cfg.data, out_dir=str(out), device="cpu",
                                           precision=cfg.perf.precision, batch_size=2, shard_rows=8)))


def run_smoke(cfg: MidtrainConfig) -> Path:
    """Train the scaled-down recipe, stopped after step 2 (a checkpoint), then resume it to ``SMOKE_STEPS``."""
    from remit.midtrain.engine import train

    work = Path(f"{cfg.out_dir.rstrip('/')}-smoke")
    small = smoke_config(cfg, work)
    train(small, "midtrain", stop_after=SMOKE_STEPS - 1)
    return train(dataclasses.replace(small, resume=True, overwrite=False), "midtrain")
