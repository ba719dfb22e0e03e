"""Cached tokenisation, mixtures, and packing that keeps every token and every document boundary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from remit.data import DataSource, PackedDataset, build_packed, read_texts, tokenize_source
from remit.data import tokens as tokens_mod


def _stream(ds: PackedDataset) -> tuple[np.ndarray, np.ndarray]:
    """Undo the stride-seq_len packing: the token stream and its doc ids (padding removed)."""
    tok = np.concatenate([ds.tokens[0, :1], ds.tokens[:, 1:].reshape(-1)])
    doc = np.concatenate([ds.doc_ids[0, :1], ds.doc_ids[:, 1:].reshape(-1)])
    return tok[doc >= 0], doc[doc >= 0]


def test_tokenize_cache_hit(tmp_path, tiny_jsonl, tiny_tokenizer):
    src = DataSource(str(tiny_jsonl))
    before = dict(tokens_mod.STATS)
    a = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path)
    files = list(tmp_path.glob("tok-*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    b = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path)
    assert tokens_mod.STATS["tokenized_sources"] == before["tokenized_sources"] + 1
    assert tokens_mod.STATS["cache_hits"] == before["cache_hits"] + 1
    assert files[0].stat().st_mtime_ns == mtime
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets)
    texts = read_texts(src)
    assert a.num_docs == len(texts) == 100
    for i in (0, 57, 99):
        assert a.doc(i).tolist() == tiny_tokenizer.encode(texts[i]) + [tiny_tokenizer.eos_token_id]
    # another field selection or limit is another cache entry
    c = tokenize_source(DataSource(str(tiny_jsonl), limit=10), tiny_tokenizer, cache_dir=tmp_path)
    assert c.num_docs == 10 and c.fingerprint != a.fingerprint
    assert len(list(tmp_path.glob("tok-*.npz"))) == 2


def test_fingerprint_follows_data_and_tokenizer(tmp_path, tiny_tokenizer, tiny_texts):
    from remit.models import train_tokenizer

    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"text": "one two"}) + "\n")
    fp1 = tokenize_source(DataSource(str(p)), tiny_tokenizer, cache_dir=None).fingerprint
    p.write_text(json.dumps({"text": "one three"}) + "\n")
    fp2 = tokenize_source(DataSource(str(p)), tiny_tokenizer, cache_dir=None).fingerprint
    other = train_tokenizer(tiny_texts[:100], 300)
    fp3 = tokenize_source(DataSource(str(p)), other, cache_dir=None).fingerprint
    assert len({fp1, fp2, fp3}) == 3


def test_packing_preserves_tokens_and_boundaries(tmp_path, tiny_jsonl, tiny_tokenizer):
    src = DataSource(str(tiny_jsonl))
    ds = build_packed([src], tiny_tokenizer, 16, cache_dir=tmp_path, seed=3)
    tok = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "tokens")
    assert ds.tokens.dtype == np.int32 and ds.doc_ids.dtype == np.int32 and ds.tokens.shape[1] == 17
    # consecutive rows share exactly one token
    assert np.array_equal(ds.tokens[1:, 0], ds.tokens[:-1, -1])
    stream, doc = _stream(ds)
    assert len(stream) == len(tok.tokens) == ds.num_tokens
    assert (len(stream) - 1) // 16 <= len(ds) <= (len(stream) - 1) // 16 + 1
    # padding only at the end of the last row, with the pad token
    pad_mask = ds.doc_ids < 0
    assert not pad_mask[:-1].any() and np.all(ds.tokens[pad_mask] == tiny_tokenizer.pad_token_id)
    # each doc id is one contiguous run holding exactly one source document (ending in eos)
    starts = np.flatnonzero(np.diff(doc, prepend=-1))
    assert np.array_equal(doc[starts], np.arange(len(starts)))
    bounds = np.append(starts, len(doc))
    docs = sorted(tuple(stream[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
    assert docs == sorted(tuple(tok.doc(i)) for i in range(tok.num_docs))
    assert all(d[-1] == tiny_tokenizer.eos_token_id for d in docs)
    # deterministic by seed, another seed another order, cached on disk
    again = build_packed([src], tiny_tokenizer, 16, cache_dir=tmp_path, seed=3)
    assert again.fingerprint == ds.fingerprint and np.array_equal(again.tokens, ds.tokens)
    other = build_packed([src], tiny_tokenizer, 16, cache_dir=tmp_path / "b", seed=4)
    assert other.fingerprint != ds.fingerprint and not np.array_equal(other.tokens, ds.tokens)
    assert len(list(tmp_path.glob("packed-*"))) == 1
    loaded = PackedDataset.load(tmp_path / f"packed-{ds.fingerprint}", mmap=True)
    assert np.array_equal(loaded.doc_ids, ds.doc_ids) and loaded.meta["num_docs"] == 100


def test_mixture_by_weight(tmp_path, tiny_tokenizer):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"text": f"{i} + {i} = {2 * i}"}) + "\n" for i in range(300)))
    b.write_text("".join(json.dumps({"text": f"The cat has {i} cups."}) + "\n" for i in range(100)))
    srcs = [DataSource(str(a), weight=3.0), DataSource(str(b), weight=1.0)]
    ds = build_packed(srcs, tiny_tokenizer, 32, cache_dir=tmp_path / "c", seed=0)
    ta, tb = (tokenize_source(s, tiny_tokenizer, cache_dir=tmp_path / "c" / "tokens") for s in srcs)
    used = [s["tokens_used"] for s in ds.meta["sources"]]
    assert sum(used) == ds.num_tokens
    assert abs(used[0] / sum(used) - 0.75) < 1e-3
    # no max_tokens: the largest mixture that repeats nothing, so one source is used up exactly
    assert used[0] == len(ta.tokens) or used[1] == len(tb.tokens)
    assert used[0] <= len(ta.tokens) and used[1] <= len(tb.tokens)
    # max_tokens beyond the data: sources repeat, proportions and total are exact
    big = build_packed(srcs, tiny_tokenizer, 32, cache_dir=tmp_path / "c", seed=0, max_tokens=50_000)
    assert big.num_tokens == 50_000
    assert [s["tokens_used"] for s in big.meta["sources"]] == [37_500, 12_500]
    assert big.meta["sources"][1]["epochs"] > 1
    assert big.fingerprint != ds.fingerprint


def test_tinyshakespeare(tmp_path, tiny_tokenizer, shared_data):
    path = shared_data / "tinyshakespeare" / "input.txt.gz"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    src = DataSource(str(path), limit=200)
    ds = build_packed(src, tiny_tokenizer, 64, cache_dir=tmp_path, seed=0)
    texts = read_texts(src)
    assert texts[0] == "First Citizen:\nBefore we proceed any further, hear me speak."
    assert ds.meta["num_docs"] == 200
    stream, _ = _stream(ds)
    assert (stream == tiny_tokenizer.eos_token_id).sum() == 200
    assert tiny_tokenizer.decode(stream).replace("<|eos|>", "").count("Citizen") == sum(t.count("Citizen") for t in texts)
