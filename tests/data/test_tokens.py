"""Streaming tokenisation: both engines give the same shards, a killed run resumes, memory is one chunk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from remit.data import DataSource, read_texts, tokenize_source
from remit.data import tokens as tokens_mod
from remit.data.store import ShardWriter
from remit.errors import DataError


def _expected(texts, tok):
    ids = [tok.encode(t) + [tok.eos_token_id] for t in texts]
    return np.concatenate(ids), np.cumsum([0] + [len(x) for x in ids])


def test_inline_and_datasets_engines_give_the_same_shards(tmp_path, tiny_jsonl, tiny_tokenizer):
    src = DataSource(str(tiny_jsonl))
    want_tok, want_off = _expected(read_texts(src), tiny_tokenizer)
    a = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "a", chunk_docs=7)
    b = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "b", num_proc=2, chunk_docs=7)
    assert a.fingerprint == b.fingerprint
    for t in (a, b):
        assert np.array_equal(np.asarray(t.tokens), want_tok) and np.array_equal(t.offsets, want_off)
        assert t.tokens.dtype == np.uint16  # 512 ids fit: half of int32's disk
    folder = tmp_path / "b" / f"tok-{b.fingerprint}"
    assert len(list(folder.glob("shard-*.bin"))) == -(-100 // 7)  # one shard per chunk of 7 documents
    assert not (folder / "hf").exists()  # the Arrow intermediates are deleted
    assert [f.read_bytes() for f in sorted(folder.glob("shard-*.bin"))] == \
        [f.read_bytes() for f in sorted((tmp_path / "a" / f"tok-{a.fingerprint}").glob("shard-*.bin"))]


def test_killed_tokenisation_resumes_where_it_stopped(tmp_path, tiny_jsonl, tiny_tokenizer, monkeypatch):
    src = DataSource(str(tiny_jsonl))
    real_add, calls = ShardWriter.add, {"n": 0}

    def dying_add(self, lengths, flat):
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed while writing the fifth shard
        calls["n"] += 1
        real_add(self, lengths, flat)

    monkeypatch.setattr(ShardWriter, "add", dying_add)
    with pytest.raises(KeyboardInterrupt):
        tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path, chunk_docs=10)
    encoded = []
    real_chunk = tokens_mod.encode_chunk
    monkeypatch.setattr(ShardWriter, "add", real_add)
    monkeypatch.setattr(tokens_mod, "encode_chunk", lambda tok, texts, dt: encoded.append(len(texts)) or
                        real_chunk(tok, texts, dt))
    before = tokens_mod.STATS["tokenized_sources"]
    out = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path, chunk_docs=10)
    assert encoded == [10] * 6  # 4 finished shards of 10 documents were kept, 60 documents were left
    assert tokens_mod.STATS["tokenized_sources"] == before + 1
    want_tok, want_off = _expected(read_texts(src), tiny_tokenizer)
    assert np.array_equal(np.asarray(out.tokens), want_tok) and np.array_equal(out.offsets, want_off)


def test_tokenisation_memory_is_one_chunk(tmp_path, tiny_tokenizer, monkeypatch):
    # The chunks handed to the tokenizer never exceed chunk_docs documents, whatever the corpus size.
    p = tmp_path / "big.jsonl"
    p.write_text("".join(json.dumps({"text": f"doc {i} has {i % 7} cups."}) + "\n" for i in range(1000)))
    sizes = []
    real_chunk = tokens_mod.encode_chunk
    monkeypatch.setattr(tokens_mod, "encode_chunk", lambda tok, texts, dt: sizes.append(len(texts)) or
                        real_chunk(tok, texts, dt))
    out = tokenize_source(DataSource(str(p)), tiny_tokenizer, cache_dir=tmp_path / "c", chunk_docs=64)
    assert max(sizes) == 64 and sum(sizes) == 1000 == out.num_docs


def test_empty_source_is_one_line_error_with_both_engines(tmp_path, tiny_tokenizer):
    p = tmp_path / "empty.jsonl"
    p.write_text(json.dumps({"text": "  "}) + "\n")
    for n in (1, 2):
        with pytest.raises(DataError, match=r"empty.jsonl: empty dataset"):
            tokenize_source(DataSource(str(p)), tiny_tokenizer, cache_dir=tmp_path / f"c{n}", num_proc=n)


def test_torn_or_zeroed_token_shards_are_refused_naming_the_rebuild(tmp_path, tiny_jsonl, tiny_tokenizer):
    import zlib

    from remit.data import build_packed

    src = DataSource(str(tiny_jsonl))
    out = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "tokens", chunk_docs=10)
    folder = tmp_path / "tokens" / f"tok-{out.fingerprint}"
    meta = json.loads((folder / "meta.json").read_text())
    shard = folder / "shard-00003.bin"
    data = shard.read_bytes()
    assert meta["shard_bytes"][3] == len(data) and meta["shard_crc32"][3] == f"{zlib.crc32(data):08x}"
    shard.write_bytes(data[: len(data) // 2])  # torn: a power loss before the data reached the disk
    with pytest.raises(DataError, match=r"shard-00003.bin: the token shard is torn .*remit prepare-data"):
        tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "tokens", chunk_docs=10)
    with pytest.raises(DataError, match="shard-00003.bin: the token shard is torn"):  # packing reads it too
        build_packed([src], tiny_tokenizer, 16, cache_dir=tmp_path)
    shard.write_bytes(bytes(len(data)))  # the right size, zeroed
    toks = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "tokens", chunk_docs=10).tokens
    assert len(toks.read(0, 5)) == 5  # shard 0 is intact
    with pytest.raises(DataError, match=r"shard-00003.bin: the token shard is damaged \(CRC-32 .*remit prepare-data"):
        np.asarray(toks)
