"""Pack tokenised documents from a weighted mixture of sources into fixed-length rows.

    from remit.data import DataSource, build_packed
    ds = build_packed([DataSource("a.jsonl", weight=3), DataSource("b.txt")], tok, 512, cache_dir="cache")
    ds.tokens   # int32 [N, 513]; ds.doc_ids: int32 [N, 513], -1 at padding

Mixture: weights are token proportions. With ``max_tokens`` unset the total is the largest
one that repeats no document (one source: all of it); with ``max_tokens`` set, a source may
be repeated (each repeat is a fresh shuffle). Documents are drawn per source in a seeded
order, then all chosen documents are shuffled together (seeded), joined (eos after each)
and cut into rows of ``seq_len + 1`` tokens with a stride of ``seq_len``: consecutive rows
share one token, so every token but the first is a training target exactly once. The last
row is padded with the pad token (doc id -1). ``doc_ids`` number documents in stream order,
so they are unique within a row (and across rows, except for a document that spans two).
A packed dataset is cached in ``<cache_dir>/packed-<fingerprint>/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remit.data.sources import DataSource
from remit.data.tokens import tokenize_source, tokenizer_fingerprint
from remit.errors import ConfigError, DataError
from remit.utils.io import atomic_dir, atomic_write_json, fingerprint

PACKING_VERSION = 1


@dataclass
class PackedDataset:
    tokens: np.ndarray  # int32 [N, seq_len + 1]
    doc_ids: np.ndarray  # int32 [N, seq_len + 1], -1 = padding
    fingerprint: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1] - 1

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens in the stream."""
        return int(self.meta.get("num_tokens", (self.doc_ids >= 0).sum()))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def save(self, path: str | Path) -> Path:
        with atomic_dir(path) as tmp:
            np.save(tmp / "tokens.npy", self.tokens)
            np.save(tmp / "doc_ids.npy", self.doc_ids)
            atomic_write_json(tmp / "packed.json", {"fingerprint": self.fingerprint, **self.meta})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> PackedDataset:
        path = Path(path)
        try:
            meta = json.loads((path / "packed.json").read_text(encoding="utf-8"))
            mode = "r" if mmap else None
            tokens = np.load(path / "tokens.npy", mmap_mode=mode)
            doc_ids = np.load(path / "doc_ids.npy", mmap_mode=mode)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a packed dataset ({e})") from None
        return cls(tokens, doc_ids, meta.pop("fingerprint"), meta)


def _quotas(sizes: list[int], weights: list[float], max_tokens: int | None) -> list[int]:
    p = np.asarray(weights, dtype=np.float64) / sum(weights)
    total = max_tokens if max_tokens is not None else int(min(n / q for n, q in zip(sizes, p)))
    quotas = np.floor(p * total).astype(np.int64)
    quotas[int(np.argmax(p))] += total - int(quotas.sum())  # exact total
    return quotas.tolist()


def _draw(lengths: np.ndarray, quota: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(doc index, tokens taken) in a seeded order, whole documents until ``quota`` (the last one cut)."""
    out: list[tuple[int, int]] = []
    left = quota
    while left > 0:  # one pass per epoch over the source
        for j in rng.permutation(len(lengths)):
            take = int(min(lengths[j], left))
            out.append((int(j), take))
            left -= take
            if left == 0:
                break
    return out


def build_packed(sources: list[DataSource] | DataSource, tokenizer, seq_len: int, *, cache_dir: str | Path,
                 seed: int = 0, max_tokens: int | None = None) -> PackedDataset:
    """Tokenise (cached), mix by weight, shuffle (seeded) and pack into rows of ``seq_len + 1`` tokens."""
    if isinstance(sources, DataSource):
        sources = [sources]
    if not sources:
        raise ConfigError("data.sources is empty: give at least one data source")
    if seq_len < 1:
        raise ConfigError(f"seq_len={seq_len} must be >= 1")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"max_tokens={max_tokens} must be >= 1 (or unset)")
    cache_dir = Path(cache_dir)
    toks = [tokenize_source(s, tokenizer, cache_dir=cache_dir / "tokens") for s in sources]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    fp = fingerprint({"v": PACKING_VERSION, "tokenizer": tokenizer_fingerprint(tokenizer), "seq_len": seq_len,
                      "seed": seed, "max_tokens": max_tokens, "pad": pad,
                      "sources": [(t.fingerprint, s.weight) for t, s in zip(toks, sources)]})
    out_dir = cache_dir / f"packed-{fp}"
    if (out_dir / "packed.json").is_file():
        return PackedDataset.load(out_dir)

    quotas = _quotas([len(t.tokens) for t in toks], [s.weight for s in sources], max_tokens)
    segments = []  # (source, doc, n_tokens)
    meta_sources = []
    for i, (t, s, q) in enumerate(zip(toks, sources, quotas)):
        drawn = _draw(np.diff(t.offsets), q, np.random.default_rng([seed, i]))
        segments += [(i, j, n) for j, n in drawn]
        meta_sources.append({"path": s.path, "weight": s.weight, "docs": t.num_docs, "tokens": len(t.tokens),
                             "tokens_used": q, "docs_used": len(drawn), "epochs": q / len(t.tokens)})
    order = np.random.default_rng([seed, len(sources), 7919]).permutation(len(segments))
    parts = [toks[segments[k][0]].doc(segments[k][1])[:segments[k][2]] for k in order]
    stream = np.concatenate(parts).astype(np.int32)
    stream_doc = np.repeat(np.arange(len(parts), dtype=np.int32), [len(x) for x in parts])

    n_rows = max(1, -(-(len(stream) - 1) // seq_len))
    full = n_rows * seq_len + 1
    tokens = np.full(full, pad, dtype=np.int32)
    doc_ids = np.full(full, -1, dtype=np.int32)
    tokens[:len(stream)] = stream
    doc_ids[:len(stream)] = stream_doc
    idx = np.arange(n_rows)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    meta = {"seq_len": seq_len, "seed": seed, "max_tokens": max_tokens, "pad_token_id": pad,
            "num_tokens": len(stream), "num_docs": len(parts), "sources": meta_sources}
    ds = PackedDataset(tokens[idx], doc_ids[idx], fp, meta)
    ds.save(out_dir)
    return ds
