"""Reading post-training data: every malformed input is a DataError naming file, line and field."""

from __future__ import annotations

import json

import pytest
from posttrain_helpers import write_jsonl

from remit.errors import DataError, RemitError
from remit.posttrain.data import RL_FIELDS, SFT_FIELDS, columns_of, read_rows


def test_reads_rows_and_normalises_values(tmp_path):
    p = write_jsonl(tmp_path / "rl.jsonl", [{"prompt": "What is 2 + 3?", "answer": 5, "kind": "arith"},
                                            {"prompt": "What is 1 + 1?", "answer": "2"}])
    rows = read_rows(p, required=RL_FIELDS)
    assert [r["answer"] for r in rows] == ["5", "2"]  # numbers become strings
    assert rows[1]["kind"] == ""  # a column missing from some rows is filled
    assert columns_of(rows) == {"answer": ["5", "2"], "kind": ["arith", ""]}
    assert len(read_rows(p, required=RL_FIELDS, limit=1)) == 1


def test_blank_lines_are_skipped(tmp_path):
    p = tmp_path / "sft.jsonl"
    p.write_text('\n{"prompt": "a", "response": "b"}\n\n', encoding="utf-8")
    assert read_rows(p, required=SFT_FIELDS) == [{"prompt": "a", "response": "b"}]


@pytest.mark.parametrize("content, needle", [
    ("", "no rows"),
    ("\n\n", "no rows"),
    ('{"prompt": "a", "answer": "1"}\n{"prompt": "b", "answer": \n', ":2: not valid JSON"),
    ('["prompt", "answer"]\n', ":1: expected a JSON object"),
    ('{"prompt": "a", "answer": "1"}\n{"prompt": "b"}\n', ":2: missing field 'answer'"),
    ('{"prompt": "  ", "answer": "1"}\n', ":1: field 'prompt' is empty"),
    ('{"prompt": "a", "answer": null}\n', ":1: field 'answer' must be a string"),
    ('{"prompt": "a", "answer": true}\n', ":1: field 'answer' must be a string"),
])
def test_malformed_files(tmp_path, content, needle):
    p = tmp_path / "rl.jsonl"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_rows(p, required=RL_FIELDS)
    assert needle in str(e.value) and str(p) in str(e.value)
    assert isinstance(e.value, RemitError)


def test_missing_file_and_missing_response(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_rows(tmp_path / "nope.jsonl", required=SFT_FIELDS)
    p = tmp_path / "sft.jsonl"
    p.write_text(json.dumps({"prompt": "q", "answer": "1"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"sft.jsonl:1: missing field 'response'"):
        read_rows(p, required=SFT_FIELDS)
