"""Tokenise a data source once and cache the result on disk.

The cache file ``<cache_dir>/tok-<fingerprint>.npz`` holds every document's ids (eos
appended after each) concatenated, plus document offsets. The fingerprint covers the
tokenizer (its full serialised state, or vocab + special tokens) and the data (file bytes,
text_field / template / limit / doc_split), so changing either re-tokenises and nothing else does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remit.data.sources import DataSource, data_files, is_hf_dataset_dir, looks_local, read_texts
from remit.errors import DataError
from remit.utils.io import file_fingerprint, fingerprint

# Counts what really happened, so tests (and logs) can tell a cache hit without timing.
STATS = {"tokenized_sources": 0, "tokenized_docs": 0, "cache_hits": 0}


@dataclass
class TokenizedSource:
    tokens: np.ndarray  # int32 [n_tokens], eos after every document
    offsets: np.ndarray  # int64 [n_docs + 1]; document i is tokens[offsets[i]:offsets[i + 1]]
    fingerprint: str

    @property
    def num_docs(self) -> int:
        return len(self.offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]


def tokenizer_fingerprint(tokenizer) -> str:
    special = {k: getattr(tokenizer, k, None) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    special["all"] = sorted(map(str, tokenizer.all_special_tokens))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    state = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return fingerprint({"state": state, "special": special, "len": len(tokenizer)})


def source_fingerprint(src: DataSource) -> str:
    path = Path(src.path).expanduser()
    if is_hf_dataset_dir(path):
        content = file_fingerprint(path)
    elif looks_local(src.path):
        if not path.exists():
            raise DataError(f"{path}: file not found")
        files = data_files(path)
        content = file_fingerprint(files) + ":" + ",".join(str(f.relative_to(path)) if path.is_dir() else f.name
                                                           for f in files)
    else:  # hub id: named, not content-addressed (the hub dataset may change under the same id)
        content = f"hub:{src.path}:{src.subset}"
    return fingerprint({"content": content, "split": src.split, "fields": src.fields(), "template": src.template,
                        "text_field": src.text_field, "limit": src.limit, "doc_split": src.doc_split})


def encode_texts(tokenizer, texts: list[str], batch_size: int = 1024) -> list[list[int]]:
    """Token ids without added special tokens (fast path: the Rust tokenizer, no length warnings)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    out: list[list[int]] = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i:i + batch_size]
        if backend is not None:
            out += [e.ids for e in backend.encode_batch(chunk, add_special_tokens=False)]
        else:
            out += tokenizer(chunk, add_special_tokens=False)["input_ids"]
    return out


def tokenize_source(src: DataSource, tokenizer, *, cache_dir: str | Path | None) -> TokenizedSource:
    """Ids of every document of ``src`` + eos, from the cache when present."""
    src.validate()
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no eos token: documents cannot be separated when packed")
    fp = fingerprint({"tok": tokenizer_fingerprint(tokenizer), "data": source_fingerprint(src)})
    cache = Path(cache_dir) / f"tok-{fp}.npz" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            STATS["cache_hits"] += 1
            return TokenizedSource(z["tokens"], z["offsets"], fp)
    texts = read_texts(src)
    eos = tokenizer.eos_token_id
    chunks, lengths = [], []
    for i in range(0, len(texts), 4096):  # numpy per chunk: peak memory ~ one chunk of Python ints
        ids = encode_texts(tokenizer, texts[i:i + 4096])
        lengths += [len(x) + 1 for x in ids]
        chunks.append(np.fromiter((t for x in ids for t in (*x, eos)), dtype=np.int32, count=sum(lengths[-len(ids):])))
    tokens = np.concatenate(chunks)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    STATS["tokenized_sources"] += 1
    STATS["tokenized_docs"] += len(lengths)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, tokens=tokens, offsets=offsets)
        os.replace(tmp, cache)
    return TokenizedSource(tokens, offsets, fp)
