"""Pack tokenised documents from a weighted mixture of sources into fixed-length rows, by index.

    from remit.data import DataSource, build_packed
    ds = build_packed([DataSource("a.jsonl", weight=3), DataSource("b.txt")], tok, 512, cache_dir="cache")
    tokens, doc_ids = ds.rows([0, 7])   # int32 [2, 513] each; doc_ids -1 at padding

Mixture: weights are token proportions. With ``max_tokens`` unset the total is the largest
one that repeats no document (one source: all of it); with ``max_tokens`` set, each source is read
only up to its share of it (its token cap, ``DataSource.max_tokens``, unless the source sets a smaller
one: the first documents of the source in file / stream order, never the whole source), and a source
whose cap is below its share is repeated (each repeat is a fresh shuffle). ``meta["sources"]`` says,
per source, the cap, the tokens read and the tokens used. Documents are drawn per source in a seeded
order, then all chosen documents are shuffled together (seeded), joined (eos after each)
and cut into rows of ``seq_len + 1`` tokens with a stride of ``seq_len``: consecutive rows
share one token, so every token but the first is a training target exactly once. The last
row is padded with the pad token (doc id -1). ``doc_ids`` number documents in stream order,
so they are unique within a row (and across rows, except for a document that spans two).

The joined stream is never built. ``<cache_dir>/packed-<fingerprint>/`` holds its index: for each
document of the stream (its doc id) the source, where its ids start in that source's memory-mapped
token shards and where it starts in the stream (``index-*.npy``, ~20 bytes a document, memory-mapped
too). ``rows(idx)`` reads just those rows from the shards, so a rank touches only the rows it trains
on. The rows are identical to the earlier layout (one materialised ``[N, seq_len + 1]`` array), and so
is the fingerprint: caches keyed by it (``remit score-reference``) stay valid.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remit.data.sources import DataSource
from remit.data.store import ShardedTokens
from remit.data.tokens import missing_cache, tokenize_source, tokenizer_fingerprint
from remit.errors import ConfigError, DataError
from remit.utils.io import atomic_dir, atomic_write_json, fingerprint

PACKING_VERSION = 1
INDEX = ("source", "pos", "start")  # index-<name>.npy


@dataclass
class PackedDataset:
    """Rows held as arrays (``tokens``, ``doc_ids``: int32 [N, seq_len + 1]); see :class:`IndexedPacked`."""

    tokens: Any
    doc_ids: Any
    fingerprint: str
    meta: dict[str, Any] = field(default_factory=dict)
    mask: Any = None  # uint8 [N, seq_len + 1], 0 = not counted (loss=assistant sources); None: all are

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1] - 1

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens in the stream."""
        return int(self.meta.get("num_tokens", (np.asarray(self.doc_ids) >= 0).sum()))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def rows(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, doc_ids) of rows ``idx``: int32 [len(idx), seq_len + 1] each."""
        idx = np.asarray(idx, dtype=np.int64)
        return np.asarray(self.tokens[idx], dtype=np.int32), np.asarray(self.doc_ids[idx], dtype=np.int32)

    def loss_mask(self, idx) -> np.ndarray | None:
        """uint8 [len(idx), seq_len + 1], 0 where a token is not counted (loss=assistant sources); None: all are."""
        if self.mask is None:
            return None
        return np.asarray(self.mask[np.asarray(idx, dtype=np.int64)], dtype=np.uint8)

    def save(self, path: str | Path) -> Path:
        with atomic_dir(path) as tmp:
            np.save(tmp / "tokens.npy", np.asarray(self.tokens))
            np.save(tmp / "doc_ids.npy", np.asarray(self.doc_ids))
            if self.mask is not None:
                np.save(tmp / "mask.npy", np.asarray(self.mask))
            atomic_write_json(tmp / "packed.json", {"fingerprint": self.fingerprint, **self.meta})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> PackedDataset:
        """A packed folder: an index over token shards (today) or materialised rows (older caches)."""
        path = Path(path)
        try:
            meta = json.loads((path / "packed.json").read_text(encoding="utf-8"))
            if (path / "index-start.npy").is_file():
                return IndexedPacked.open(path, meta)
            mode = "r" if mmap else None
            tokens = np.load(path / "tokens.npy", mmap_mode=mode)
            doc_ids = np.load(path / "doc_ids.npy", mmap_mode=mode)
            mask = np.load(path / "mask.npy", mmap_mode=mode) if (path / "mask.npy").is_file() else None
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a packed dataset ({e})") from None
        return cls(tokens, doc_ids, meta.pop("fingerprint"), meta, mask)


class _Rows:
    """``ds.tokens`` / ``ds.doc_ids`` of an index-backed dataset: indexable like the array, read on demand."""

    def __init__(self, ds: IndexedPacked, which: int):
        self.ds, self.which = ds, which
        self.shape = (ds.n_rows, ds.seq_len + 1)
        self.dtype, self.ndim = np.dtype(np.int32), 2

    def __len__(self) -> int:
        return self.shape[0]

    def _get(self, idx) -> np.ndarray:
        return self.ds.rows(idx)[self.which]

    def __getitem__(self, key):
        key, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(key, (int, np.integer)):
            return self._get([key])[0][rest] if rest else self._get([key])[0]
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        key = np.asarray(key)
        if key.dtype == bool and key.ndim > 1:
            return np.asarray(self)[(key, *rest)]
        out = self._get(np.flatnonzero(key) if key.dtype == bool else key)
        return out[(slice(None), *rest)] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self._get(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self).astype(dtype)


class IndexedPacked(PackedDataset):
    """Rows computed from the stream index and the sources' memory-mapped token shards."""

    def __init__(self, sources: list[ShardedTokens], index: dict[str, np.ndarray], fingerprint: str,
                 meta: dict[str, Any], masks: list[ShardedTokens | None] | None = None):
        self.sources, self.index = sources, index
        self.masks = masks if masks is not None and any(m is not None for m in masks) else None
        self.n_rows, self._seq_len, self.pad = int(meta["rows"]), int(meta["seq_len"]), int(meta["pad_token_id"])
        self.total = int(index["start"][-1])
        super().__init__(_Rows(self, 0), _Rows(self, 1), fingerprint, meta)

    @property
    def seq_len(self) -> int:
        return self._seq_len

    def __len__(self) -> int:
        return self.n_rows

    def _segments(self, idx: np.ndarray):
        """(batch row, lo, hi, doc id, source, position in the source) of every document piece of rows ``idx``."""
        L = self._seq_len
        start, src, pos = self.index["start"], self.index["source"], self.index["pos"]
        for b, r in enumerate(idx.tolist()):
            if not 0 <= r < self.n_rows:
                raise DataError(f"row {r} is outside the packed dataset ({self.n_rows} rows)")
            p, end = r * L, min(r * L + L + 1, self.total)
            k = int(np.searchsorted(start, p, side="right")) - 1
            while p < end:
                seg_end = min(int(start[k + 1]), end)
                yield b, p - r * L, seg_end - r * L, k, int(src[k]), int(pos[k]) + p - int(start[k])
                p, k = seg_end, k + 1

    def rows(self, idx) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        L = self._seq_len
        tok = np.full((len(idx), L + 1), self.pad, dtype=np.int32)
        doc = np.full((len(idx), L + 1), -1, dtype=np.int32)
        for b, lo, hi, k, s, at in self._segments(idx):
            tok[b, lo:hi] = self.sources[s].read(at, at + hi - lo)
            doc[b, lo:hi] = k
        return tok, doc

    def loss_mask(self, idx) -> np.ndarray | None:
        if self.masks is None:
            return None
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.ones((len(idx), self._seq_len + 1), dtype=np.uint8)
        for b, lo, hi, _, s, at in self._segments(idx):
            if self.masks[s] is not None:
                out[b, lo:hi] = self.masks[s].read(at, at + hi - lo)
        return out

    @classmethod
    def open(cls, path: Path, meta: dict[str, Any], sources: list[ShardedTokens] | None = None,
             masks: list[ShardedTokens | None] | None = None) -> IndexedPacked:
        meta = dict(meta)
        fp = meta.pop("fingerprint")
        index = {name: np.load(path / f"index-{name}.npy", mmap_mode="r") for name in INDEX}
        if sources is None:
            sources = [ShardedTokens.open_files([(path / f).resolve() for f in s["files"]], s["dtype"], s["files"])
                       for s in meta["stores"]]
        for s, want in zip(sources, meta["stores"]):
            if len(s) != want["tokens"]:
                raise DataError(f"{path}: a source holds {len(s)} tokens, the index was built over {want['tokens']} "
                                f"({', '.join(want['files'][:2])}...): the token files changed; delete {path}")
        if masks is None:  # loss=assistant sources: their mask stores, listed next to the token files
            masks = [None if not s.get("mask_files") else
                     ShardedTokens.open_files([(path / f).resolve() for f in s["mask_files"]], "uint8", s["mask_files"])
                     for s in meta["stores"]]
        return cls(sources, index, fp, meta, masks)


def _quotas(sizes: list[int], weights: list[float], max_tokens: int | None) -> list[int]:
    p = np.asarray(weights, dtype=np.float64) / sum(weights)
    total = max_tokens if max_tokens is not None else int(min(n / q for n, q in zip(sizes, p)))
    quotas = np.floor(p * total).astype(np.int64)
    quotas[int(np.argmax(p))] += total - int(quotas.sum())  # exact total
    return quotas.tolist()


def _draw(lengths: np.ndarray, quota: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(doc indices, tokens taken) in a seeded order, whole documents until ``quota`` (the last one cut)."""
    docs, takes = [], []
    left = quota
    while left > 0:  # one pass per epoch over the source
        perm = rng.permutation(len(lengths))
        cum = np.cumsum(lengths[perm])
        if cum[-1] < left:
            docs.append(perm), takes.append(lengths[perm])
            left -= int(cum[-1])
            continue
        k = int(np.searchsorted(cum, left))  # the first document that reaches the quota, cut to fit
        take = lengths[perm[:k + 1]].copy()
        take[-1] = left - (int(cum[k - 1]) if k else 0)
        docs.append(perm[:k + 1]), takes.append(take)
        left = 0
    return np.concatenate(docs).astype(np.int64), np.concatenate(takes).astype(np.int64)


def capped_sources(sources: list[DataSource], max_tokens: int | None, seed: int) -> list[DataSource]:
    """The sources as read: each with the run's packing ``seed`` unless it has its own (a capped source is a
    seeded sample), and capped at its share of ``max_tokens`` (read only that far) when there is a budget."""
    sources = [s if s.seed is not None else dataclasses.replace(s, seed=seed) for s in sources]
    if max_tokens is None:
        return list(sources)
    shares = _quotas([0] * len(sources), [s.weight for s in sources], max_tokens)
    return [s if s.max_tokens is not None and s.max_tokens <= q else dataclasses.replace(s, max_tokens=q)
            for s, q in zip(sources, shares)]


def build_packed(sources: list[DataSource] | DataSource, tokenizer, seq_len: int, *, cache_dir: str | Path,
                 seed: int = 0, max_tokens: int | None = None, num_proc: int = 1, keys: list[str] | None = None,
                 build: bool = True) -> PackedDataset:
    """Tokenise (cached), mix by weight, shuffle (seeded) and index rows of ``seq_len + 1`` tokens.

    ``keys``: the sources' ``source_key`` when already known (computed once by rank 0 of a job);
    ``build=False``: only open the caches, a missing one is a one-line ``DataError``.
    """
    if isinstance(sources, DataSource):
        sources = [sources]
    if not sources:
        raise ConfigError("data.sources is empty: give at least one data source")
    if seq_len < 1:
        raise ConfigError(f"seq_len={seq_len} must be >= 1")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"max_tokens={max_tokens} must be >= 1 (or unset)")
    cache_dir = Path(cache_dir)
    sources = capped_sources(sources, max_tokens, seed)  # `keys`, when given, were computed from these sources
    keys = keys or [None] * len(sources)
    toks = [tokenize_source(s, tokenizer, cache_dir=cache_dir / "tokens", num_proc=num_proc, key=k, build=build)
            for s, k in zip(sources, keys)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    fp = fingerprint({"v": PACKING_VERSION, "tokenizer": tokenizer_fingerprint(tokenizer), "seq_len": seq_len,
                      "seed": seed, "max_tokens": max_tokens, "pad": pad,
                      "sources": [(t.fingerprint, s.weight) for t, s in zip(toks, sources)]})
    out_dir = cache_dir / f"packed-{fp}"
    if (out_dir / "packed.json").is_file():
        meta = json.loads((out_dir / "packed.json").read_text(encoding="utf-8"))
        if (out_dir / "index-start.npy").is_file():
            return IndexedPacked.open(out_dir, meta, [t.tokens for t in toks], [t.mask for t in toks])
        return PackedDataset.load(out_dir, mmap=True)
    if not build:
        raise missing_cache(out_dir)

    quotas = _quotas([t.num_tokens for t in toks], [s.weight for s in sources], max_tokens)
    seg_src, seg_pos, seg_take, meta_sources = [], [], [], []
    for i, (t, s, q) in enumerate(zip(toks, sources, quotas)):
        offsets = np.asarray(t.offsets)
        docs, takes = _draw(np.diff(offsets), q, np.random.default_rng([seed, i]))
        seg_src.append(np.full(len(docs), i, dtype=np.int32))
        seg_pos.append(offsets[docs])
        seg_take.append(takes)
        meta_sources.append({"path": s.path, "weight": s.weight, "max_tokens": s.max_tokens,
                             "docs": t.num_docs, "tokens": t.num_tokens,
                             "tokens_used": q, "docs_used": len(docs), "epochs": q / t.num_tokens})
    order = np.random.default_rng([seed, len(sources), 7919]).permutation(sum(len(x) for x in seg_src))
    take = np.concatenate(seg_take)[order]
    start = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(take, out=start[1:])
    n_tokens = int(start[-1])
    n_rows = max(1, -(-(n_tokens - 1) // seq_len))
    meta = {"seq_len": seq_len, "seed": seed, "max_tokens": max_tokens, "pad_token_id": pad,
            "num_tokens": n_tokens, "num_docs": len(order), "sources": meta_sources, "rows": n_rows}
    with atomic_dir(out_dir, keep_existing=True) as tmp:  # runs sharing a cache may build it at once
        np.save(tmp / "index-source.npy", np.concatenate(seg_src)[order])
        np.save(tmp / "index-pos.npy", np.concatenate(seg_pos)[order])
        np.save(tmp / "index-start.npy", start)
        stores = [{"files": [os.path.relpath(n, out_dir) for n in t.tokens.names], "dtype": t.tokens.dtype.name,
                   "tokens": len(t.tokens),
                   **({"mask_files": [os.path.relpath(n, out_dir) for n in t.mask.names]} if t.mask else {})}
                  for t in toks]
        atomic_write_json(tmp / "packed.json", {"fingerprint": fp, **meta, "stores": stores})
    return IndexedPacked.open(out_dir, {"fingerprint": fp, **meta, "stores": stores}, [t.tokens for t in toks],
                              [t.mask for t in toks])
