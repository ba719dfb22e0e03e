"""Build a run from its config: tokenizer, model, packed data, the method's objective and frozen models.

The method (``remit.methods``) says what it needs: a reference (online or a ``score-reference`` cache),
full logits, a data preparation step (MiniPLM); nothing here knows a method by name.

Rank 0 does the work that writes files (training a tokenizer, hashing, tokenising and packing the data)
first; the other ranks wait at a barrier and then open the same files (they never build or clean a
cache), so all ranks see identical inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remit.data import BatchIterator, build_packed, read_texts, source_key, tokenizer_fingerprint
from remit.data.iterator import check_document_attention
from remit.data.packing import capped_sources
from remit.errors import ConfigError
from remit.methods.base import Method, PrepareContext
from remit.methods.registry import get_method
from remit.midtrain import perf
from remit.midtrain.config import MidtrainConfig
from remit.midtrain.distributed import World, barrier, broadcast_object, wrap_model
from remit.midtrain.reference import (
    CachedReference,
    OnlineReference,
    PolicyLogps,
    cache_fingerprint,
    model_fingerprint,
)
from remit.midtrain.trainer import Trainer, build_optimizer
from remit.models import (
    check_compatible,
    check_positions,
    check_vocab_rows,
    load_model,
    load_tokenizer,
    train_tokenizer,
)

__all__ = ["Run", "build_run", "load_tokenizer_for", "build_dataset", "data_cache_dir", "cache_parts"]


@dataclass
class Run:
    trainer: Any
    iterator: Any
    policy: torch.nn.Module  # the wrapped PolicyLogps (what DDP / FSDP2 see)
    optimizer: torch.optim.Optimizer
    hf_model: torch.nn.Module
    tokenizer: Any
    total_steps: int
    accum: int
    inputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _first_on_main(world: World, fn):
    """Run ``fn`` on rank 0, then on the others (which then find rank 0's cached files)."""
    out = fn() if world.is_main else None
    barrier(world)
    return out if world.is_main else fn()


def load_tokenizer_for(cfg: MidtrainConfig, world: World, out: Path):
    src = cfg.model.tokenizer or cfg.model.path
    if src is not None:
        return load_tokenizer(src)
    tok_dir = out / "tokenizer"

    def make():
        if not (tok_dir / "tokenizer.json").is_file():
            texts = [t for s in cfg.data.sources for t in read_texts(s)]
            train_tokenizer(texts, cfg.model.tokenizer_vocab_size, out_dir=tok_dir,
                            split_digits=cfg.model.tokenizer_split_digits)
        return load_tokenizer(tok_dir)

    return _first_on_main(world, make)


def data_cache_dir(cfg, out: Path) -> Path:
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else out.parent / "cache"


def build_dataset(cfg, tokenizer, world: World, out: Path):
    """The packed dataset. Several processes: rank 0 hashes the data (once, memoised by (path, size, mtime))
    and builds any missing cache; the others get its keys, then only open the cache, never build or clean it."""
    cache = data_cache_dir(cfg, out)
    sources = capped_sources(list(cfg.data.sources), cfg.data.max_tokens, cfg.data.pack_seed)  # keyed as read
    keys = None
    if world.distributed:
        keys = broadcast_object([source_key(s, tokenizer, cache / "tokens") for s in sources]
                                if world.is_main else None, world)

    def open_or_build(build: bool):
        return build_packed(sources, tokenizer, cfg.data.seq_len, cache_dir=cache, seed=cfg.data.pack_seed,
                            max_tokens=cfg.data.max_tokens, num_proc=cfg.data.num_proc, keys=keys, build=build)

    if not world.distributed:
        return open_or_build(True)
    ds = open_or_build(True) if world.is_main else None
    barrier(world)
    return ds if world.is_main else open_or_build(False)


def cache_parts(*, reference: str | None, tokenizer, dataset, data_cfg, numerics: str | None = None) -> dict[str, Any]:
    """The fingerprint parts that key a reference log-prob cache for this tokenizer, packed data and numerics."""
    return cache_fingerprint(
        reference=model_fingerprint(reference) if reference else None, numerics=numerics,
        tokenizer=tokenizer_fingerprint(tokenizer), data=dataset.fingerprint,
        packing={"seq_len": data_cfg.seq_len, "seed": data_cfg.pack_seed, "max_tokens": data_cfg.max_tokens,
                 "rows": len(dataset),
                 # only when off, so that the fingerprints of caches made without the option stay as they were
                 **({} if data_cfg.cross_document_attention else {"cross_document_attention": False})})


def _load_frozen(path: str, world: World, tokenizer, policy_model, check: bool, chunk: int | None,
                 cfg: MidtrainConfig, want_logits: bool = False, key: str = "reference.path"):
    """A frozen model (reference, base, MiniPLM scorer), compiled when ``cfg.perf.compile``, under the
    numerics of the policy's forward (``perf.numerics``: fp32 weights, the same autocast).

    Checked before use: it must score every token id of the tokenizer and cover ``data.seq_len``
    positions; errors name the config ``key`` that gave ``path``. It scores over the same vocabulary
    rows as the policy (``vocab_limit``).
    """
    if check:
        check_compatible((policy_model, tokenizer), path)  # raises IncompatibleModelsError
    weights, autocast = perf.numerics(cfg.perf.precision, world.device)
    model = load_model(path, dtype=weights, device=world.device)
    vocab_limit = check_vocab_rows(model, tokenizer, f"{key}={path}")
    check_positions(model.config, cfg.data.seq_len, where=f"{key}={path}", allow=cfg.model.extrapolate_positions)
    check_document_attention(model.config, max(cfg.optim.micro_batch_size, cfg.perf.reference_micro_batch_size or 0),
                             cfg.data.cross_document_attention, f"{key}={path}")
    model = perf.apply_to_model(model, cfg.perf, frozen=True)  # compile only a model that passed the checks
    return OnlineReference(model, vocab_limit=vocab_limit, chunk_size=chunk, want_logits=want_logits,
                           autocast_dtype=autocast)


def _frozen_reference(cfg: MidtrainConfig, method: Method, world: World, tokenizer, model, dataset, inputs: dict):
    """The frozen reference of training: None, a ``score-reference`` cache or an online model, as the method needs."""
    ref_cfg = cfg.reference
    if method.needs_reference:
        inputs["reference"] = ref_cfg.path
    if method.reference not in ("logps", "logits"):  # none, or a scorer the method's prepare has used
        return None
    if ref_cfg.cache is not None and method.reference == "logps":
        reference = CachedReference(ref_cfg.cache)
        reference.check(cache_parts(reference=ref_cfg.path, tokenizer=tokenizer, dataset=dataset, data_cfg=cfg.data,
                                    numerics=perf.numerics_key(cfg.perf.precision, world.device)))
        inputs["reference_cache"] = ref_cfg.cache
        return reference
    if ref_cfg.path is None:
        raise ConfigError(f"method.name={method.name} needs reference.path"
                          f"{' (full distributions)' if method.reference == 'logits' else ' or reference.cache'}")
    return _load_frozen(ref_cfg.path, world, tokenizer, model, ref_cfg.check, ref_cfg.chunk_size, cfg,
                        want_logits=(method.reference == "logits"))


def _frozen_base(cfg: MidtrainConfig, world: World, tokenizer, model, dataset):
    """The starting checkpoint, frozen, for ``method.frozen_base`` (cached or online); None without it."""
    ref_cfg = cfg.reference
    if not cfg.method.frozen_base:
        return None
    if ref_cfg.base_cache is not None:
        base = CachedReference(ref_cfg.base_cache)
        base.check(cache_parts(reference=cfg.model.path, tokenizer=tokenizer, dataset=dataset, data_cfg=cfg.data,
                               numerics=perf.numerics_key(cfg.perf.precision, world.device)),
                   what="reference.base_cache")
        return base
    return _load_frozen(cfg.model.path, world, tokenizer, model, False, ref_cfg.chunk_size, cfg, key="model.path")


def build_run(cfg: MidtrainConfig, world: World, out: Path) -> Run:
    """Everything a run needs, from its config; the method (``remit.methods``) says what it needs."""
    # Every random state a checkpoint saves starts from the run's seed: two identical runs write
    # bit-identical state.pt files (not only weights and optimizer states).
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer_for(cfg, world, out)
    if cfg.model.path is not None:
        model = load_model(cfg.model.path, dtype=perf.numerics(cfg.perf.precision, world.device)[0],
                           device=world.device)
        check_positions(model.config, cfg.data.seq_len, where=f"model.path={cfg.model.path}",
                        allow=cfg.model.extrapolate_positions)
        check_document_attention(model.config, cfg.optim.micro_batch_size, cfg.data.cross_document_attention,
                                 f"model.path={cfg.model.path}")
    else:
        model = cfg.model.fresh.build(tokenizer, seed=cfg.seed).to(world.device)
    model.train()
    perf.apply_to_model(model, cfg.perf)
    dataset = build_dataset(cfg, tokenizer, world, out)
    method = get_method(cfg.method.name)
    objective = method.build(cfg)
    inputs: dict[str, Any] = {"model": cfg.model.path or "fresh", "data": [s.path for s in cfg.data.sources]}
    extra: dict[str, Any] = {"method": method.name, "data_fingerprint": dataset.fingerprint}
    if cfg.perf.reference_micro_batch_size is not None and method.reference == "logits":
        raise ConfigError(f"perf.reference_micro_batch_size applies to log-prob references; method.name="
                          f"{method.name} needs full logits per micro-batch: leave it unset")
    if method.prepare is not None:
        def load_frozen(path: str, key: str):
            return _load_frozen(path, world, tokenizer, model, cfg.reference.check, cfg.reference.chunk_size, cfg,
                                key=key)

        dataset, extra[method.name] = method.prepare(PrepareContext(cfg, dataset, load_frozen, world.device))
    reference = _frozen_reference(cfg, method, world, tokenizer, model, dataset, inputs)
    base = _frozen_base(cfg, world, tokenizer, model, dataset)

    per_rank = cfg.optim.micro_batch_size * world.world_size
    if cfg.optim.batch_size % per_rank:
        raise ConfigError(f"optim.batch_size={cfg.optim.batch_size} must be a multiple of optim.micro_batch_size "
                          f"x processes = {cfg.optim.micro_batch_size} x {world.world_size}")
    accum = cfg.optim.batch_size // per_rank
    total_steps = cfg.total_steps

    # the frozen models' vocab_limit too: every model normalises over the tokenizer's rows, not padding rows
    policy = PolicyLogps(model, vocab_limit=check_vocab_rows(model, tokenizer, "the policy"),
                         chunk_size=cfg.reference.chunk_size, want_logits=(method.reference == "logits"))
    policy = wrap_model(policy, world, cfg.parallel, cfg.fsdp)
    optimizer = build_optimizer(policy, cfg.optim, fused=perf.use_fused_adamw(cfg.perf, world.device))
    trainer = Trainer(policy, optimizer, objective, world=world, reference=reference, base=base,
                      grad_clip=cfg.optim.grad_clip, autocast_dtype=perf.autocast_dtype(cfg.perf, world.device),
                      reference_rows=cfg.perf.reference_micro_batch_size,
                      reduce_every_micro_batch=cfg.parallel == "fsdp" and cfg.fsdp.reduce_every_micro_batch)
    iterator = BatchIterator(dataset, cfg.optim.micro_batch_size, seed=cfg.seed, rank=world.rank,
                             world_size=world.world_size, accumulation=accum,
                             cross_document_attention=cfg.data.cross_document_attention)
    extra["rows"] = len(dataset)
    return Run(trainer, iterator, policy, optimizer, model, tokenizer, total_steps, accum, inputs, extra)
