"""Cached tokenisation, mixtures, and packing that keeps every token and every document boundary.

``_old_packed`` is the earlier in-memory packing (whole stream concatenated, rows materialised), kept
here as the reference: the index-backed rows must equal it exactly.
"""

from __future__ import annotations

import dataclasses
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
    files = list(tmp_path.glob("tok-*/meta.json"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    b = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path)
    assert tokens_mod.STATS["tokenized_sources"] == before["tokenized_sources"] + 1
    assert tokens_mod.STATS["cache_hits"] == before["cache_hits"] + 1
    assert files[0].stat().st_mtime_ns == mtime
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets)
    assert isinstance(b.tokens.arrays[0], np.memmap) and isinstance(b.offsets, np.memmap)  # read in place
    texts = read_texts(src)
    assert a.num_docs == len(texts) == 100
    for i in (0, 57, 99):
        assert a.doc(i).tolist() == tiny_tokenizer.encode(texts[i]) + [tiny_tokenizer.eos_token_id]
    # another field selection or limit is another cache entry
    c = tokenize_source(DataSource(str(tiny_jsonl), limit=10), tiny_tokenizer, cache_dir=tmp_path)
    assert c.num_docs == 10 and c.fingerprint != a.fingerprint
    assert len(list(tmp_path.glob("tok-*/meta.json"))) == 2


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
    pad_mask = np.asarray(ds.doc_ids) < 0
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


def _old_packed(toks, weights, seq_len, seed, max_tokens, pad):
    """The earlier implementation of build_packed's rows (per-document Python loop, whole stream in RAM)."""
    sizes = [t.num_tokens for t in toks]
    p = np.asarray(weights, dtype=np.float64) / sum(weights)
    total = max_tokens if max_tokens is not None else int(min(n / q for n, q in zip(sizes, p)))
    quotas = np.floor(p * total).astype(np.int64)
    quotas[int(np.argmax(p))] += total - int(quotas.sum())
    segments = []
    for i, (t, q) in enumerate(zip(toks, quotas.tolist())):
        rng, lengths, left = np.random.default_rng([seed, i]), np.diff(np.asarray(t.offsets)), q
        while left > 0:
            for j in rng.permutation(len(lengths)):
                take = int(min(lengths[j], left))
                segments.append((i, int(j), take))
                left -= take
                if left == 0:
                    break
    order = np.random.default_rng([seed, len(toks), 7919]).permutation(len(segments))
    parts = [toks[segments[k][0]].doc(segments[k][1])[:segments[k][2]] for k in order]
    stream = np.concatenate(parts).astype(np.int32)
    stream_doc = np.repeat(np.arange(len(parts), dtype=np.int32), [len(x) for x in parts])
    n_rows = max(1, -(-(len(stream) - 1) // seq_len))
    tokens = np.full(n_rows * seq_len + 1, pad, dtype=np.int32)
    doc_ids = np.full(n_rows * seq_len + 1, -1, dtype=np.int32)
    tokens[:len(stream)], doc_ids[:len(stream)] = stream, stream_doc
    idx = np.arange(n_rows)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return tokens[idx], doc_ids[idx]


@pytest.mark.parametrize("seq_len, max_tokens", [(16, None), (7, 9_000), (64, 50_000), (4, 3)])
def test_indexed_rows_equal_the_old_packing(tmp_path, tiny_jsonl, tiny_tokenizer, seq_len, max_tokens):
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"text": f"The cat has {i} cups."}) + "\n" for i in range(50)))
    srcs = [DataSource(str(tiny_jsonl), weight=2.0), DataSource(str(b), weight=1.0)]
    ds = build_packed(srcs, tiny_tokenizer, seq_len, cache_dir=tmp_path / "c", seed=5, max_tokens=max_tokens)
    if max_tokens is not None:  # each source is read up to its share of the mix (then packed as before)
        from remit.data.packing import _quotas

        srcs = [dataclasses.replace(s, max_tokens=q) for s, q in zip(srcs, _quotas([0, 0], [2.0, 1.0], max_tokens))]
    toks = [tokenize_source(s, tiny_tokenizer, cache_dir=tmp_path / "c" / "tokens") for s in srcs]
    old_tok, old_doc = _old_packed(toks, [2.0, 1.0], seq_len, 5, max_tokens, tiny_tokenizer.pad_token_id)
    assert len(ds) == len(old_tok)
    rows = np.random.default_rng(0).permutation(len(ds))[:40]
    tok, doc = ds.rows(rows)
    assert np.array_equal(tok, old_tok[rows]) and np.array_equal(doc, old_doc[rows])
    assert np.array_equal(np.asarray(ds.tokens), old_tok) and np.array_equal(np.asarray(ds.doc_ids), old_doc)
    # the index is memory-mapped, ~20 bytes a document, and reopening reads the same rows
    assert isinstance(ds.index["start"], np.memmap) and len(ds.index["start"]) == ds.meta["num_docs"] + 1
    again = PackedDataset.load(tmp_path / "c" / f"packed-{ds.fingerprint}")
    assert np.array_equal(again.rows(rows)[0], old_tok[rows]) and again.fingerprint == ds.fingerprint


def test_fingerprint_unchanged_from_the_old_packing(tmp_path, tiny_jsonl, tiny_tokenizer):
    # The packed fingerprint keys reference caches written before the index existed: it must not move.
    from remit.data.tokens import source_fingerprint
    from remit.utils.io import fingerprint

    src = DataSource(str(tiny_jsonl))
    ds = build_packed(src, tiny_tokenizer, 16, cache_dir=tmp_path, seed=3)
    tok_fp = fingerprint({"tok": tokens_mod.tokenizer_fingerprint(tiny_tokenizer), "data": source_fingerprint(src)})
    assert ds.fingerprint == fingerprint({"v": 1, "tokenizer": tokens_mod.tokenizer_fingerprint(tiny_tokenizer),
                                          "seq_len": 16, "seed": 3, "max_tokens": None,
                                          "pad": tiny_tokenizer.pad_token_id, "sources": [(tok_fp, 1.0)]})


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
