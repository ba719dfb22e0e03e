"""``remit score-reference``: cache a frozen model's per-token log-probs for a packed dataset.

    remit score-reference reference=runs/x/grpo data.sources='[{path: mid.jsonl}]' data.seq_len=256 \
        out_dir=runs/x/ref_cache
    remit midtrain --config configs/midtrain/remit_cached.yaml reference.cache=runs/x/ref_cache

Output: ``meta.json`` (fingerprint parts: reference weights, tokenizer, packed data, packing;
dtype; rows) and ``shards/shard-XXXXX.npy`` of ``[shard_rows, seq_len]`` log-probs, row i = packed row i
(position t scores token t + 1, every position, padding included: the trainer masks). ``meta.json``
lists every shard with the rows it holds. Shards are written atomically; a shard that is there and
matches the metadata (rows, seq_len, dtype; ``reference.shard_error``) is skipped, a missing or damaged
one is scored again, so an interrupted run resumes and a cut copy is repaired. One run per ``out_dir``
(its lock, ``remit.utils.lock``); temp shards of a killed run are removed at the start. fp32 by default,
fp16 on request (2 bytes/token); bf16 is refused (7 mantissa bits lose the deltas ReMiT centres).
The frozen-base variant's base log-probs are the same cache made with ``reference=<start checkpoint>``.

Several processes: ``torchrun --nproc_per_node N -m remit.cli score-reference ...``. Rank 0 packs the
data (the others wait, then read its index); rank r scores shards r, r + N, r + 2N, ... (disjoint rows,
its own files); rank 0 checks every shard and writes ``meta.json`` with the rows each shard holds. The
cache is byte-identical to a one-process run (same shards, same batches within a shard).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from remit.config import ConfigError, check_choice, check_range
from remit.errors import DataError
from remit.manifest import is_complete, write_manifest
from remit.midtrain.config import DataConfig
from remit.utils.integrity import crc32_file, write_durable
from remit.utils.io import atomic_write_json, remove_stale_temps
from remit.utils.lock import out_dir_lock

if TYPE_CHECKING:
    from remit.midtrain.distributed import World

__all__ = ["ScoreConfig", "run"]


@dataclass
class ScoreConfig:
    reference: str = ""  # model dir or hub id
    tokenizer: str | None = None  # default: the reference's
    data: DataConfig = field(default_factory=DataConfig)
    out_dir: str = "runs/default/ref_cache"
    dtype: str = "float32"  # float32 | float16
    batch_size: int = 8
    shard_rows: int = 1024
    chunk_size: int | None = None
    device: str | None = None
    extrapolate_positions: bool = False  # allow data.seq_len > the reference's max_position_embeddings
    precision: str = "auto"  # the training run's perf.precision: the cache is scored under its numerics
    dist_timeout_s: int = 1800  # several processes: how long a collective waits for the slowest rank

    def validate(self) -> None:
        if not self.reference:
            raise ConfigError("reference is required: the model whose log-probs are cached (dir or hub id)")
        if self.dtype in ("bfloat16", "bf16"):
            raise ConfigError("dtype=bfloat16 is refused: bf16 keeps 7 mantissa bits, too few for the log-prob "
                              "deltas ReMiT centres. Accepted values: float32, float16.")
        if self.dtype not in ("float32", "float16"):
            raise ConfigError(f"dtype={self.dtype!r} is not accepted. Accepted values: float32, float16.")
        check_range("batch_size", self.batch_size, lo=1)
        check_range("shard_rows", self.shard_rows, lo=1)
        check_choice("precision", self.precision, ("auto", "bf16", "fp32"))


def run(cfg: ScoreConfig) -> Path:
    """Score (or finish scoring) the cache; rank 0 holds the lock of ``out_dir`` (one run per folder)."""
    from remit.midtrain.distributed import init_world

    world = init_world(cfg.device, cfg.dist_timeout_s)
    with out_dir_lock(cfg.out_dir, "score-reference", enabled=world.is_main):
        return _run(cfg, world)


def _crc(out: Path, shard: dict) -> str:
    """The CRC-32 recorded next to a shard when it was written (computed now for a shard of an older remit)."""
    side = out / "shards" / (shard["file"] + ".crc32")
    try:
        return side.read_text().strip()
    except OSError:
        crc = crc32_file(out / "shards" / shard["file"])
        write_durable(side, lambda f: f.write(crc.encode()))
        return crc


def _crc_ok(out: Path, shard: dict) -> bool:
    side = out / "shards" / (shard["file"] + ".crc32")
    return not side.is_file() or crc32_file(out / "shards" / shard["file"]) == side.read_text().strip()


def _run(cfg: ScoreConfig, world: World) -> Path:
    # torch and the engine's modules are imported here, not at the top: `remit score-reference --help` stays light
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from remit.data import packed_batch
    from remit.data.iterator import check_document_attention
    from remit.midtrain import perf
    from remit.midtrain.distributed import barrier, check_shared
    from remit.midtrain.reference import CACHE_META, CachedReference, OnlineReference, shard_error, shard_table
    from remit.midtrain.setup import build_dataset, cache_parts, data_cache_dir
    from remit.models import check_positions, check_vocab_rows, load_model, load_tokenizer

    out = Path(cfg.out_dir)
    check_shared({"out_dir": out, "data.cache_dir": data_cache_dir(cfg, out)}, world)
    done = is_complete(out, cfg) and CachedReference.is_intact(out, verify=True)  # the repair command reads it all
    barrier(world)  # every rank has looked before rank 0 changes anything
    if done:
        return out
    device = world.device
    if world.is_main:
        remove_stale_temps(out / "shards")  # shards a killed run was writing
    tokenizer = load_tokenizer(cfg.tokenizer or cfg.reference)
    dataset = build_dataset(cfg, tokenizer, world, out)
    parts = cache_parts(reference=cfg.reference, tokenizer=tokenizer, dataset=dataset, data_cfg=cfg.data,
                        numerics=perf.numerics_key(cfg.precision, device))
    shards = shard_table(len(dataset), cfg.shard_rows)
    meta = {"fingerprint": parts, "reference_path": cfg.reference, "num_rows": len(dataset),
            "seq_len": dataset.seq_len, "shard_rows": cfg.shard_rows, "dtype": cfg.dtype, "shards": shards,
            "complete": False}
    meta_file = out / CACHE_META
    if meta_file.is_file():
        old = json.loads(meta_file.read_text(encoding="utf-8"))
        diff = [k for k in ("fingerprint", "shard_rows", "dtype") if old.get(k) != meta[k]]
        if diff:
            raise ConfigError(f"out_dir={out} holds a reference cache made differently ({', '.join(diff)} "
                              f"differ): choose another out_dir or delete it")
    if world.is_main:
        (out / "shards").mkdir(parents=True, exist_ok=True)
        atomic_write_json(meta_file, meta)
    barrier(world)

    weights, autocast = perf.numerics(cfg.precision, device)  # the training forward's numerics
    model = load_model(cfg.reference, dtype=weights, device=device)
    check_positions(model.config, cfg.data.seq_len, where=f"reference={cfg.reference}",
                    allow=cfg.extrapolate_positions, option="extrapolate_positions")
    check_document_attention(model.config, cfg.batch_size, cfg.data.cross_document_attention,
                             f"reference={cfg.reference}")
    ref = OnlineReference(model, chunk_size=cfg.chunk_size, autocast_dtype=autocast,
                          vocab_limit=check_vocab_rows(model, tokenizer, f"reference={cfg.reference}"))
    np_dtype = np.float16 if cfg.dtype == "float16" else np.float32
    mine = shards[world.rank::world.world_size]  # disjoint rows: rank r scores shards r, r + N, ...
    todo = [s for s in mine if shard_error(out, meta, s) or not _crc_ok(out, s)]  # missing or damaged shards
    if world.is_main:  # what is scored: every packed row, i.e. data.max_tokens when it is set (what the run uses)
        print(f"[remit score-reference] {len(dataset):,} rows x {dataset.seq_len} = {len(dataset) * dataset.seq_len:,} "
              f"token positions (data.max_tokens={cfg.data.max_tokens}); {len(todo)} of {len(mine)} shards of this "
              f"process to score", file=sys.stderr, flush=True)
    for s in tqdm(todo, desc="score-reference", unit="shard", disable=not world.is_main):
        lo, hi = s["rows"]
        buf = np.empty((hi - lo, dataset.seq_len), dtype=np_dtype)
        for i in range(lo, hi, cfg.batch_size):
            tok, doc = dataset.rows(np.arange(i, min(i + cfg.batch_size, hi)))
            batch = packed_batch(tok, doc, cross_document_attention=cfg.data.cross_document_attention)
            batch["labels"] = torch.from_numpy(tok[:, 1:].astype(np.int64))  # every position, padding included
            del batch["doc_ids"]
            logps, _ = ref({k: v.to(device) for k, v in batch.items()})
            buf[i - lo:i - lo + len(tok)] = logps.cpu().numpy().astype(np_dtype)
        final = out / "shards" / s["file"]
        crc = write_durable(final, lambda f, buf=buf: np.save(f, buf))  # fsynced before its rename
        write_durable(final.with_name(final.name + ".crc32"), lambda f, crc=crc: f.write(crc.encode()))
    barrier(world)
    for s in shards:  # on every rank, so that all of them stop together on a bad shard
        problem = shard_error(out, meta, s)
        if problem:
            raise DataError(problem)
    if world.is_main:
        crcs = {s["file"]: _crc(out, s) for s in shards}  # as each shard's writer recorded it
        atomic_write_json(meta_file, {**meta, "complete": True, "crc32": crcs})
        write_manifest(out, "score-reference", cfg, inputs={"reference": cfg.reference}, rows=len(dataset),
                       shards=len(shards), processes=world.world_size, bytes_per_token=np.dtype(np_dtype).itemsize)
    barrier(world)
    return out
