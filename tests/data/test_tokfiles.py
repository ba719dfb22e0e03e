"""kind=tokens sources: dolma / OLMo-core flat token arrays (written here with numpy) pack like the text they came from."""

from __future__ import annotations

import numpy as np
import pytest

from remit.data import DataSource, build_packed, tokenize_source
from remit.errors import ConfigError, DataError


@pytest.fixture
def token_dir(tmp_path, tiny_jsonl, tiny_tokenizer):
    """tiny.jsonl tokenised and written as two raw uint16 files (documents 0-59, 60-99), dolma's layout."""
    tok = tokenize_source(DataSource(str(tiny_jsonl)), tiny_tokenizer, cache_dir=None)
    flat = np.asarray(tok.tokens).astype(np.uint16)
    cut = int(tok.offsets[60])
    out = tmp_path / "dolma"
    out.mkdir()
    flat[:cut].tofile(out / "part-0-00000.npy")
    flat[cut:].tofile(out / "part-1-00000.npy")
    return out


def test_token_files_pack_like_their_text(tmp_path, token_dir, tiny_jsonl, tiny_tokenizer):
    text = build_packed(DataSource(str(tiny_jsonl)), tiny_tokenizer, 16, cache_dir=tmp_path / "a", seed=2)
    src = DataSource(str(token_dir), kind="tokens", dtype="uint16")
    ids = build_packed(src, tiny_tokenizer, 16, cache_dir=tmp_path / "b", seed=2)
    assert ids.meta["num_docs"] == 100 and ids.num_tokens == text.num_tokens
    assert np.array_equal(np.asarray(ids.tokens), np.asarray(text.tokens))
    assert np.array_equal(np.asarray(ids.doc_ids), np.asarray(text.doc_ids))
    # read in place: the packed index points into the user's files, nothing was copied
    assert not list((tmp_path / "b").rglob("*.bin"))
    assert any("part-1-00000.npy" in f for s in ids.meta["stores"] for f in s["files"])
    # a glob, and an np.save file with a header, are the same source
    single = tmp_path / "one.npy"
    np.save(single, np.concatenate([np.fromfile(f, np.uint16) for f in sorted(token_dir.iterdir())]))
    for path in (str(token_dir / "part-*.npy"), str(single)):
        t = tokenize_source(DataSource(path, kind="tokens", dtype="uint16"), tiny_tokenizer, cache_dir=tmp_path / "c")
        assert t.num_docs == 100 and t.doc(60).tolist() == ids.sources[0].read(*map(int, t.offsets[60:62])).tolist()
    limited = tokenize_source(DataSource(str(single), kind="tokens", dtype="uint16", limit=7), tiny_tokenizer,
                              cache_dir=tmp_path / "c")
    assert limited.num_docs == 7


def test_token_files_that_do_not_fit_the_model_are_refused(tmp_path, token_dir, tiny_tokenizer):
    ids = np.fromfile(token_dir / "part-0-00000.npy", np.uint16)
    eos = tiny_tokenizer.eos_token_id

    def err(arr, dtype="uint16", **kw):
        p = tmp_path / f"f{len(list(tmp_path.glob('f*')))}.npy"
        arr.tofile(p)
        with pytest.raises(DataError) as e:
            tokenize_source(DataSource(str(p), kind="tokens", dtype=dtype, **kw), tiny_tokenizer, cache_dir=tmp_path)
        assert str(p) in str(e.value) or p.name in str(e.value)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "not a whole number of uint32 ids" in err(ids[:11], "uint32")
    assert f"eos_token_id=7 but the tokenizer's EOS id is {eos}" in err(ids, eos_token_id=7)
    bad = ids.copy()
    bad[5] = 600
    assert "id 600 at position 5 is outside the tokenizer's vocabulary (512 ids)" in err(bad)
    assert f"no EOS id {eos}" in err(ids[ids != eos])
    # uint16 files read as uint32: pairs of ids become one huge id, outside the vocabulary
    assert "outside the tokenizer's vocabulary" in err(ids[:len(ids) // 2 * 2], "uint32")


def test_uint16_cannot_hold_a_large_vocabulary(tmp_path, token_dir, tiny_tokenizer, monkeypatch):
    from remit.data import tokfiles

    class Big:
        eos_token_id = tiny_tokenizer.eos_token_id

        def __len__(self):
            return 100_278  # OLMo 2's tokenizer

    with pytest.raises(DataError, match=r"dtype=uint16 holds ids below 65536, but the tokenizer has 100278: set "
                                         r"dtype=uint32"):
        tokfiles.check_fit(DataSource(str(token_dir), kind="tokens", dtype="uint16"), Big())
    with pytest.raises(ConfigError, match="dtype"):
        DataSource(str(token_dir), kind="tokens", dtype="int64").validate()
    with pytest.raises(DataError, match="holds ids, not text"):
        from remit.data import read_texts

        read_texts(DataSource(str(token_dir), kind="tokens"))


def test_a_truncated_npy_token_file_is_one_line(tmp_path):
    from remit.data.store import map_ids

    f = tmp_path / "part-0.npy"
    np.save(f, np.arange(1000, dtype=np.uint16))
    f.write_bytes(f.read_bytes()[:900])
    with pytest.raises(DataError, match=r"part-0.npy: the .npy file is truncated or damaged"):
        map_ids(f, np.dtype(np.uint16))
