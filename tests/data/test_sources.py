"""read_texts: every format, templates, limits, and a DataError naming file and line for bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from remit.data import DataSource, read_texts
from remit.errors import ConfigError, DataError


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_formats(tmp_path, tiny_jsonl):
    texts = read_texts(DataSource(str(tiny_jsonl)))
    assert len(texts) == 100 and all(isinstance(t, str) and t for t in texts)
    assert texts[0] == json.loads(tiny_jsonl.read_text().splitlines()[0])["text"]

    recs = [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "4"}, {"q": " ", "a": ""}]
    tmpl = "Q: {q}\nA: {a}"
    _jsonl(tmp_path / "qa.jsonl", recs)
    assert read_texts(DataSource(str(tmp_path / "qa.jsonl"), template=tmpl)) == ["Q: 1+1\nA: 2", "Q: 2+2\nA: 4",
                                                                                "Q:  \nA: "]
    (tmp_path / "qa.json").write_text(json.dumps(recs, indent=1))
    assert read_texts(DataSource(str(tmp_path / "qa.json"), text_field="a")) == ["2", "4"]  # empty doc skipped
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": recs[:2]}))
    assert read_texts(DataSource(str(tmp_path / "wrapped.json"), text_field="q")) == ["1+1", "2+2"]
    with gzip.open(tmp_path / "qa.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in recs))
    assert read_texts(DataSource(str(tmp_path / "qa.jsonl.gz"), text_field="q", limit=1)) == ["1+1"]

    (tmp_path / "t.txt").write_text("para one\nline two\n\npara two\n\n\n")
    assert read_texts(DataSource(str(tmp_path / "t.txt"))) == ["para one\nline two", "para two"]
    assert read_texts(DataSource(str(tmp_path / "t.txt"), doc_split="line")) == ["para one", "line two", "para two"]
    assert read_texts(DataSource(str(tmp_path / "t.txt"), doc_split="file")) == ["para one\nline two\n\npara two"]

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a b", "c"], "n": [1, 2]}), tmp_path / "x.parquet")
    assert read_texts(DataSource(str(tmp_path / "x.parquet"))) == ["a b", "c"]


def test_folder_and_save_to_disk(tmp_path):
    import datasets

    d = tmp_path / "folder"
    d.mkdir()
    _jsonl(d / "b.jsonl", [{"text": "second"}])
    _jsonl(d / "a.jsonl", [{"text": "first"}])
    assert read_texts(DataSource(str(d))) == ["first", "second"]

    ds = datasets.Dataset.from_dict({"question": ["x", "y"], "answer": ["1", "2"]})
    datasets.DatasetDict({"train": ds, "test": ds.select([1])}).save_to_disk(str(tmp_path / "hf"))
    src = DataSource(str(tmp_path / "hf"), template="{question}={answer}")
    assert read_texts(src) == ["x=1", "y=2"]
    src.split = "test"
    assert read_texts(src) == ["y=2"]
    src.split = "validation"
    with pytest.raises(DataError, match="no split 'validation' \\(splits present: train, test\\)"):
        read_texts(src)


def test_bad_inputs_name_file_and_line(tmp_path):
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(DataError, match=f"{missing}: file not found"):
        read_texts(DataSource(str(missing)))

    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="empty.jsonl: empty dataset"):
        read_texts(DataSource(str(tmp_path / "empty.jsonl")))

    p = _jsonl(tmp_path / "f.jsonl", [{"text": "ok"}, {"text": "ok"}, {"body": "x", "id": 3}])
    with pytest.raises(DataError, match=f"{p}:3: no field 'text' \\(fields present: body, id\\)"):
        read_texts(DataSource(str(p)))
    with pytest.raises(DataError, match=f"{p}:1: no field 'body'"):
        read_texts(DataSource(str(p), template="{body}"))

    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}\n\n{"text": oops}\n')
    with pytest.raises(DataError, match=f"{p}:4: invalid JSON"):
        read_texts(DataSource(str(p)))

    p = tmp_path / "latin1.jsonl"
    p.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=f"{p}:2: not valid UTF-8 \\(byte 0xe9 at column 14\\)"):
        read_texts(DataSource(str(p)))

    p = tmp_path / "latin1.txt"
    p.write_bytes(b"one\ntwo\nthr\xffee\n")
    with pytest.raises(DataError, match=f"{p}:3: not valid UTF-8"):
        read_texts(DataSource(str(p)))

    p = tmp_path / "bad.json"
    p.write_text('[\n {"text": "a"},\n {"text": "b",}\n]')
    with pytest.raises(DataError, match=f"{p}:3: invalid JSON"):
        read_texts(DataSource(str(p)))

    p = tmp_path / "field.json"
    p.write_text('[\n  {"text": "a"},\n  {"txt": "b"}\n]')
    with pytest.raises(DataError, match=f"{p}:3: no field 'text' \\(fields present: txt\\)"):
        read_texts(DataSource(str(p)))

    p = _jsonl(tmp_path / "null.jsonl", [{"text": None}])
    with pytest.raises(DataError, match=f"{p}:1: field 'text' is null"):
        read_texts(DataSource(str(p)))

    p = tmp_path / "list.jsonl"
    p.write_text('["not", "a", "record"]\n')
    with pytest.raises(DataError, match=f"{p}:1: expected a JSON object"):
        read_texts(DataSource(str(p)))

    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="x.csv: unsupported file type"):
        read_texts(DataSource(str(tmp_path / "x.csv")))


@pytest.mark.parametrize("kwargs, match", [
    (dict(path=""), "path is empty"),
    (dict(path="a.jsonl", weight=0), "weight"),
    (dict(path="a.jsonl", limit=0), "limit"),
    (dict(path="a.jsonl", template="{} and {}"), "must name record fields"),
    (dict(path="a.jsonl", template="{oops"), "not a valid format string"),
    (dict(path="a.txt", doc_split="page"), "doc_split"),
])
def test_validate(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DataSource(**kwargs).validate()


def test_gsm8k_template(shared_data):
    path = shared_data / "gsm8k" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    texts = read_texts(DataSource(str(path), template="Question: {question}\nAnswer: {answer}"))
    assert len(texts) == 1319  # per gsm8k/SOURCES.md
    assert texts[0].startswith("Question: Janet") and "\nAnswer: " in texts[0]
    assert all("####" in t for t in texts)


@pytest.mark.parametrize("text", ["a\r\nb\r\n\r\nc\r\n", "a\n\n\nb\n\n\n\n c \n", "\n\n x\n \ny\n\nz", "one",
                                  "p\n\n\n\n\nq\r\n\r\n\r\nr\n\n"])
def test_streamed_txt_splits_like_the_whole_text(tmp_path, text):
    # The reader streams lines; its documents must be those of splitting the whole text (the earlier reader).
    p = tmp_path / "t.txt"
    p.write_bytes(text.encode())
    paras = [x.strip("\n") for x in text.replace("\r\n", "\n").split("\n\n") if x.strip()]
    lines = [x.strip("\n") for x in text.splitlines() if x.strip()]
    assert read_texts(DataSource(str(p))) == paras
    assert read_texts(DataSource(str(p), doc_split="line")) == lines
