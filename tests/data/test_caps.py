"""Sources that fit real corpora: token caps honoured while reading, streamed hub datasets, chat sources.

A capped source is read only up to its cap: a bad line (or an out-of-vocabulary id) past it is never
reached. The hub path is exercised with ``datasets.load_dataset`` redirected to a local jsonl.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from remit.data import DataSource, build_packed, tokenize_source
from remit.errors import ConfigError, DataError


def _docs(path, n: int, bad_tail: bool = True):
    lines = [json.dumps({"text": f"Ann has {i} cups and {i + 1} pens at home."}) for i in range(n)]
    path.write_text("\n".join(lines + (["{this is not json"] if bad_tail else [])) + "\n")
    return path


@pytest.mark.parametrize("engine", ["inline", "datasets"])
def test_a_capped_source_stops_reading_at_its_cap(tmp_path, tiny_tokenizer, engine, monkeypatch):
    src = DataSource(str(_docs(tmp_path / "a.jsonl", 200)))
    with pytest.raises(DataError, match=r"a.jsonl:201: invalid JSON"):  # uncapped: the whole file is read
        tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "c0", engine=engine, chunk_docs=4)
    offsets = tokenize_source(DataSource(str(_docs(tmp_path / "clean.jsonl", 200, False))), tiny_tokenizer,
                              cache_dir=None).offsets
    if engine == "datasets":  # a budget of too few characters: the rest is read inline, same result
        monkeypatch.setattr("remit.data.tokens.CHARS_PER_TOKEN", 1)
    capped = DataSource(src.path, max_tokens=int(offsets[10]) + 3)
    t = tokenize_source(capped, tiny_tokenizer, cache_dir=tmp_path / "c1", engine=engine, chunk_docs=4)
    assert t.num_docs == 11 and t.num_tokens == offsets[11]  # whole documents up to the first past the cap
    inline = tokenize_source(capped, tiny_tokenizer, cache_dir=tmp_path / "c2", engine="inline", chunk_docs=4)
    assert np.array_equal(np.asarray(t.tokens), np.asarray(inline.tokens))


def test_token_files_are_scanned_only_up_to_the_cap(tmp_path, tiny_jsonl, tiny_tokenizer):
    tok = tokenize_source(DataSource(str(tiny_jsonl)), tiny_tokenizer, cache_dir=None)
    flat = np.asarray(tok.tokens).astype(np.uint32)
    cut = int(tok.offsets[30])
    bad = np.concatenate([flat[:cut], np.full(64, 10**6, np.uint32), flat[cut:]])  # ids no tokenizer has
    bad.tofile(tmp_path / "part-0.npy")
    src = DataSource(str(tmp_path / "part-0.npy"), kind="tokens", dtype="uint32")
    with pytest.raises(DataError, match=r"id 1000000 .* outside the tokenizer's vocabulary"):
        tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "c0")
    capped = tokenize_source(DataSource(src.path, kind="tokens", dtype="uint32", max_tokens=int(tok.offsets[20]) + 1),
                             tiny_tokenizer, cache_dir=tmp_path / "c1")
    assert capped.num_docs == 21 and np.array_equal(np.asarray(capped.offsets), np.asarray(tok.offsets[:22]))


def test_the_mix_reads_each_source_up_to_its_share(tmp_path, tiny_tokenizer):
    a, b = _docs(tmp_path / "a.jsonl", 300, False), _docs(tmp_path / "b.jsonl", 300, False)
    ds = build_packed([DataSource(str(a), weight=3.0), DataSource(str(b), weight=1.0, max_tokens=100)],
                      tiny_tokenizer, 16, cache_dir=tmp_path / "c", max_tokens=800)
    sa, sb = ds.meta["sources"]
    assert (sa["max_tokens"], sa["tokens_used"], sb["max_tokens"], sb["tokens_used"]) == (600, 600, 100, 200)
    doc_len = sa["tokens"] / sa["docs"]
    assert 600 <= sa["tokens"] < 600 + doc_len and sa["docs"] < 300  # read: its share plus < 1 document
    assert 100 <= sb["tokens"] < 100 + doc_len and sb["epochs"] == pytest.approx(2.0, rel=0.15)  # repeated
    assert ds.num_tokens == 800


def _stream_from(monkeypatch, path, seen: dict, features: bool = True):
    """datasets.load_dataset(<hub id>, ...) answered from a local jsonl, counting the records handed out."""
    import datasets

    real = datasets.load_dataset

    def fake(name, subset=None, split=None, **kw):
        seen.update(name=name, subset=subset, split=split, **kw)
        ds = real("json", data_files=str(path), split="train", streaming=kw.get("streaming", False))

        def counted(rows):
            for r in rows:
                seen["records"] = seen.get("records", 0) + 1
                yield r
        return datasets.IterableDataset.from_generator(counted, gen_kwargs={"rows": ds},
                                                       features=ds.features if features else None)

    monkeypatch.setattr(datasets, "load_dataset", fake)


def test_hub_datasets_are_streamed_and_stop_at_the_cap(tmp_path, tiny_tokenizer, monkeypatch):
    seen: dict = {}
    _stream_from(monkeypatch, _docs(tmp_path / "hub.jsonl", 500, False), seen)
    t = tokenize_source(DataSource("org/corpus", subset="web", max_tokens=50, shuffle_buffer=8), tiny_tokenizer,
                        cache_dir=tmp_path / "c", chunk_docs=8)
    assert seen["streaming"] is True and (seen["name"], seen["subset"], seen["split"]) == ("org/corpus", "web", "train")
    assert t.num_tokens >= 50 and seen["records"] <= 3 * 8  # the shuffle buffer + one chunk past the cap, never 500


@pytest.mark.parametrize("cap", [None, 50])  # capped: shuffled, but the field is checked before the buffer fills
def test_a_missing_field_names_source_field_and_fields_before_reading_on(tmp_path, tiny_tokenizer, monkeypatch, cap):
    seen: dict = {}
    path = tmp_path / "mid.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "hi"}], "source": "s"}) + "\n"
                            for _ in range(100)))
    _stream_from(monkeypatch, path, seen, features=cap is None)  # capped: a dataset that knows no columns
    with pytest.raises(DataError, match=r"^HuggingFaceTB/smoltalk2 \(subset Mid, split x\):(row 1:)? no field 'text' "
                                        r"\(fields present: messages, source\)$"):
        tokenize_source(DataSource("HuggingFaceTB/smoltalk2", subset="Mid", split="x", max_tokens=cap),
                        tiny_tokenizer, cache_dir=tmp_path / "c")
    assert seen.get("records", 0) <= 1


def test_chat_source_is_rendered_with_the_chat_template(tmp_path, tiny_tokenizer):
    from remit.data.tokens import encode_texts

    chats = [[{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": f"{i + 1}."}]
             for i in range(5)]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": m, "id": i}) + "\n" for i, m in enumerate(chats)))
    for engine in ("inline", "datasets"):
        t = tokenize_source(DataSource(str(path), kind="chat"), tiny_tokenizer, cache_dir=tmp_path / engine,
                            engine=engine)
        want = encode_texts(tiny_tokenizer, [tiny_tokenizer.apply_chat_template(chats[3], tokenize=False)])[0]
        assert t.num_docs == 5 and t.doc(3).tolist() == want + [tiny_tokenizer.eos_token_id]
    assert "What is 3 + 1?" in tiny_tokenizer.decode(t.doc(3))


@pytest.mark.parametrize("record,msg", [
    ({"text": "x"}, r"chat.jsonl:1: no field 'messages' \(fields present: text\)"),
    ({"messages": "hi"}, r"chat.jsonl:1: field 'messages' must be a list of \{role, content\} messages, got str"),
    ({"messages": [{"role": "user"}]}, r"chat.jsonl:1: field 'messages': message 0 needs string 'role' and "
                                       r"'content' \(it has role\)"),
])
def test_bad_chat_records_are_one_line(tmp_path, tiny_tokenizer, record, msg):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DataError, match=msg):
        tokenize_source(DataSource(str(path), kind="chat"), tiny_tokenizer, cache_dir=tmp_path / "c")


def test_chat_source_needs_a_template_and_no_text_template(tmp_path, tiny_tokenizer):
    import copy

    from remit.data import read_texts

    bare = copy.deepcopy(tiny_tokenizer)
    bare.chat_template = None
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(DataError, match=r"kind=chat renders messages with the tokenizer's chat template"):
        tokenize_source(DataSource(str(path), kind="chat"), bare, cache_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match=r"kind=chat .* remove template"):
        DataSource(str(path), kind="chat", template="{messages}").validate()
    with pytest.raises(DataError, match=r"kind=chat source .* cannot train a tokenizer"):
        read_texts(DataSource(str(path), kind="chat"))


def _chats(n: int) -> list[list[dict]]:
    return [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"What is {i} + 1?"},
             {"role": "assistant", "content": f"It is {i + 1}."}, {"role": "user", "content": "Sure?"},
             {"role": "assistant", "content": "Yes."}] for i in range(n)]


def test_assistant_only_mask_equals_the_generation_markers(tiny_tokenizer):
    """Prefix rendering finds the tokens the template's {% generation %} markers mark (a second method)."""
    from remit.data.tokens import encode_assistant_only

    chats = _chats(4)
    lengths, flat, mask = encode_assistant_only(tiny_tokenizer, chats, np.uint32, "chat.jsonl")
    at = 0
    for msgs, n in zip(chats, lengths.tolist()):
        want = tiny_tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True,
                                                  return_assistant_tokens_mask=True)
        assert flat[at:at + n - 1].tolist() == want["input_ids"]
        assert mask[at:at + n - 1].tolist() == want["assistant_masks"] and sum(want["assistant_masks"]) > 4
        at += n


def test_assistant_only_loss_counts_only_assistant_tokens(tmp_path, tiny_tokenizer):
    from remit.data import BatchIterator

    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in _chats(40)))
    src = DataSource(str(path), kind="chat", loss="assistant")
    ds = build_packed(src, tiny_tokenizer, 32, cache_dir=tmp_path / "c")
    batch = BatchIterator(ds, 4, seed=0).make_batch(np.arange(4))
    counted = batch["labels"][batch["labels"] != -100].tolist()
    text = tiny_tokenizer.decode(counted)
    assert counted and "What is" not in text and "Be brief" not in text and ("It is" in text or "Yes." in text)
    everything = BatchIterator(build_packed(DataSource(str(path), kind="chat"), tiny_tokenizer, 32,
                                            cache_dir=tmp_path / "c"), 4, seed=0).make_batch(np.arange(4))
    assert (everything["labels"] != -100).sum() > 2 * len(counted)
    again = build_packed(src, tiny_tokenizer, 32, cache_dir=tmp_path / "c")  # from the cache: the mask too
    assert np.array_equal(again.loss_mask(np.arange(3)), ds.loss_mask(np.arange(3)))
    with pytest.raises(ConfigError, match=r"loss=assistant needs kind=chat"):
        DataSource(str(path), loss="assistant").validate()


def _folder(root, n_files: int = 6, n_docs: int = 40):
    """A multi-file source whose files hold different sub-sources (file k's documents say 'topic k')."""
    root.mkdir()
    for k in range(n_files):
        (root / f"part-{k}.jsonl").write_text("".join(json.dumps({"text": f"topic {k} doc {i} cups pens."}) + "\n"
                                                      for i in range(n_docs)))
    return root


def _topics(tok, tokenizer) -> set[int]:
    return {int(tokenizer.decode(tok.doc(i)).split("topic ")[1].split()[0]) for i in range(tok.num_docs)}


def test_a_capped_folder_is_a_seeded_sample_of_its_files(tmp_path, tiny_tokenizer):
    root = _folder(tmp_path / "mix")
    one = tokenize_source(DataSource(str(root)), tiny_tokenizer, cache_dir=None)
    cap = int(one.offsets[30])  # fewer tokens than one file holds
    picked = [_topics(tokenize_source(DataSource(str(root), max_tokens=cap, seed=s), tiny_tokenizer, cache_dir=None),
                      tiny_tokenizer) for s in range(4)]
    assert len(set().union(*picked)) > 1  # seeds read different files, not always the first in sorted order
    again = tokenize_source(DataSource(str(root), max_tokens=cap, seed=1), tiny_tokenizer, cache_dir=None)
    assert _topics(again, tiny_tokenizer) == picked[1]  # the same seed reads the same sample
    fps = {tokenize_source(DataSource(str(root), max_tokens=cap, seed=s), tiny_tokenizer, cache_dir=None).fingerprint
           for s in (0, 1)}
    assert len(fps) == 2  # the seed is in the cache key
    assert _topics(tokenize_source(DataSource(str(root), seed=3), tiny_tokenizer, cache_dir=None),
                   tiny_tokenizer) == set(range(6))  # uncapped: everything
    with pytest.raises(ConfigError, match=r"^seed=-1 is out of range"):
        DataSource(str(root), seed=-1).validate()
    with pytest.raises(ConfigError, match=r"^shuffle_buffer=0 is out of range"):
        DataSource(str(root), shuffle_buffer=0).validate()


def test_the_mix_seed_chooses_a_capped_folder_sample(tmp_path, tiny_tokenizer):
    root = _folder(tmp_path / "mix")
    used = []
    for seed in range(3):
        ds = build_packed([DataSource(str(root))], tiny_tokenizer, 16, cache_dir=tmp_path / "c", seed=seed,
                          max_tokens=200)
        ids, _ = ds.rows(np.arange(len(ds)))
        used.append(frozenset(re.findall(r"topic (\d)", tiny_tokenizer.decode(ids.reshape(-1)))))
    assert len(set(used)) > 1  # the run's seed picks the files a capped source reads


def test_capped_hub_sources_shuffle_shards_and_records(tmp_path, tiny_tokenizer, monkeypatch):
    import datasets

    root = _folder(tmp_path / "hub")
    real = datasets.load_dataset
    files = sorted(str(p) for p in root.iterdir())
    monkeypatch.setattr(datasets, "load_dataset", lambda name, subset=None, split=None, **kw: real(
        "json", data_files=files, split="train", streaming=kw.get("streaming", False)))
    one = tokenize_source(DataSource(files[0]), tiny_tokenizer, cache_dir=None)
    cap = int(one.offsets[30])
    picked = [_topics(tokenize_source(DataSource("org/math", max_tokens=cap, seed=s, shuffle_buffer=16),
                                      tiny_tokenizer, cache_dir=None), tiny_tokenizer) for s in range(4)]
    assert len(set().union(*picked)) > 1 and picked != [{0}] * 4  # not the first shard in repository order
    order = [int(tiny_tokenizer.decode(t).split("doc ")[1].split()[0]) for t in
             (tokenize_source(DataSource("org/math", max_tokens=cap, seed=0, shuffle_buffer=16), tiny_tokenizer,
                              cache_dir=None).doc(i) for i in range(10))]
    assert order != sorted(order)  # records are shuffled within the buffer


@pytest.mark.parametrize("loss,engine", [("all", "inline"), ("all", "datasets"), ("assistant", "inline")])
def test_a_dated_chat_template_renders_a_pinned_date(tmp_path, tiny_tokenizer, loss, engine):
    """SmolLM3's template prints strftime_now(...): the tokens must not depend on the day they are made."""
    import copy
    from datetime import datetime

    from remit.data.tokens import CHAT_DATE

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = ("{{ 'Today Date: ' + strftime_now('%d %B %Y') + '\\n' }}{% for m in messages %}"
                         "{{ '<|' + m['role'] + '|>' + m['content'] + '\\n' }}{% endfor %}"
                         "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Say {i}."},
                                                     {"role": "assistant", "content": f"{i}."}]}) + "\n"
                            for i in range(5)))
    t = tokenize_source(DataSource(str(path), kind="chat", loss=loss), tok, cache_dir=None, engine=engine)
    text = tok.decode(t.doc(0))
    assert CHAT_DATE.strftime("%d %B %Y") in text and datetime.now().strftime("%d %B %Y") not in text
    plain = copy.deepcopy(tok)
    plain.chat_template = tok.chat_template.replace("strftime_now('%d %B %Y')", "'x'")
    assert t.fingerprint != tokenize_source(DataSource(str(path), kind="chat", loss=loss), plain,
                                            cache_dir=None).fingerprint


def test_a_capped_token_folder_is_a_seeded_sample_of_its_files(tmp_path, tiny_tokenizer):
    root = _folder(tmp_path / "mix")
    (tmp_path / "ids").mkdir()
    for k, f in enumerate(sorted(root.iterdir())):
        t = tokenize_source(DataSource(str(f)), tiny_tokenizer, cache_dir=None)
        np.asarray(t.tokens).astype(np.uint32).tofile(tmp_path / "ids" / f"part-{k}.npy")
    cap = int(t.offsets[30])
    picked = [_topics(tokenize_source(DataSource(str(tmp_path / "ids"), kind="tokens", max_tokens=cap, seed=s),
                                      tiny_tokenizer, cache_dir=tmp_path / "c"), tiny_tokenizer) for s in range(4)]
    assert all(len(p) == 1 for p in picked) and len(set().union(*picked)) > 1


def test_chat_source_from_prompt_response_records(tmp_path, tiny_tokenizer):
    """kind=chat with response_field: each prompt/response record is one user turn and one assistant turn,
    rendered exactly as the same conversation given as messages (a different cache key than plain text)."""
    rows = [{"prompt": f"What is {i} + 1?", "response": f"The answer is {i + 1}.", "kind": "chain"} for i in range(4)]
    pr = tmp_path / "sft.jsonl"
    pr.write_text("".join(json.dumps(r) + "\n" for r in rows))
    msgs = tmp_path / "msgs.jsonl"
    msgs.write_text("".join(json.dumps({"messages": [{"role": "user", "content": r["prompt"]},
                                                     {"role": "assistant", "content": r["response"]}]}) + "\n"
                            for r in rows))
    src = DataSource(str(pr), kind="chat", response_field="response")
    src.validate()
    a = tokenize_source(src, tiny_tokenizer, cache_dir=tmp_path / "a")
    b = tokenize_source(DataSource(str(msgs), kind="chat"), tiny_tokenizer, cache_dir=tmp_path / "b")
    assert a.num_docs == 4 and [a.doc(i).tolist() for i in range(4)] == [b.doc(i).tolist() for i in range(4)]
    with pytest.raises(ConfigError, match="response_field builds a chat turn; it needs kind=chat"):
        DataSource(str(pr), response_field="response").validate()
    with pytest.raises(DataError, match=r"sft.jsonl:1: no field 'answer_text'"):
        tokenize_source(DataSource(str(pr), kind="chat", response_field="answer_text"), tiny_tokenizer,
                        cache_dir=tmp_path / "c")
