"""Bad input gives one clear line: unknown task (lists known ones), missing data file, bad model dir."""

from __future__ import annotations

import pytest

from remit.cli import main


def _err(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_unknown_task_lists_known_ones(capsys, tiny_model_dir):
    err = _err(capsys, ["eval", "--model", str(tiny_model_dir), "tasks=gsm8k,hellaswag"])
    assert "unknown task 'hellaswag'" in err
    for name in ("gsm8k", "mmlu", "winogrande", "bbh", "copa", "world", "paper10"):
        assert name in err
    assert "Traceback" not in err
    err = _err(capsys, ["eval", "--model", str(tiny_model_dir), "--suite", "paper11"])
    assert "suite='paper11'" in err and "paper10" in err


def test_missing_local_file_names_path_and_task(capsys, tiny_model_dir, tmp_path):
    (tmp_path / "data").mkdir()
    err = _err(capsys, ["eval", "--model", str(tiny_model_dir), "tasks=arc_easy", "--data-dir", str(tmp_path / "data"),
                        f"out_dir={tmp_path / 'o'}"])
    assert "task 'arc_easy'" in err and str(tmp_path / "data" / "arc" / "ARC-Easy-Test.jsonl") in err
    err = _err(capsys, ["eval", "--model", str(tiny_model_dir), "tasks=copa", "--data-dir", str(tmp_path / "nope"),
                        f"out_dir={tmp_path / 'o'}"])
    assert "data_dir not found" in err and "nope" in err and "copa" in err


def test_world_suite_needs_world_dir_and_valid_rows(capsys, tiny_model_dir, tmp_path):
    err = _err(capsys, ["eval", "--model", str(tiny_model_dir), "--suite", "world", f"out_dir={tmp_path / 'o'}"])
    assert "world_dir" in err
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "eval.jsonl").write_text('{"prompt": "2+2?", "answer": "4", "kind": "arith"}\n{"prompt": "x"}\n')
    err = _err(capsys, ["eval", "--model", str(tiny_model_dir), "--suite", "world", f"world_dir={tmp_path / 'w'}",
                        f"out_dir={tmp_path / 'o'}"])
    assert "eval.jsonl line 2" in err and "answer" in err


@pytest.mark.parametrize("setup, expect", [
    (lambda d: None, "does not exist"),
    (lambda d: (d.mkdir(), (d / "tokenizer.json").write_text("{}"), (d / "config.json").write_text("{oops")),
     "not valid JSON"),
])
def test_bad_model_dir_says_why(capsys, tmp_path, tiny_tokenizer_dir, setup, expect):
    model = tmp_path / "model"
    setup(model)
    err = _err(capsys, ["eval", "--model", str(model), f"tokenizer={tiny_tokenizer_dir}", "--suite", "world",
                        f"out_dir={tmp_path / 'o'}", f"world_dir={tmp_path}"])
    assert str(model) in err and expect in err and "Traceback" not in err


def test_benchmark_files_with_a_wrong_field_type_or_a_fake_gz_are_one_line(tmp_path):
    import gzip
    import json

    from remit.errors import DataError
    from remit.eval import data

    (tmp_path / "gsm8k").mkdir()
    good = {"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}
    (tmp_path / "gsm8k" / "test.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "answer": 2}) + "\n")
    with gzip.open(tmp_path / "gsm8k" / "train.jsonl.gz", "wt") as f:
        f.write(json.dumps(good) + "\n")
    with pytest.raises(DataError, match=r"task 'gsm8k': .*test.jsonl line 2: field 'answer' must be str, got int"):
        data.gsm8k(tmp_path)
    (tmp_path / "gsm8k" / "test.jsonl").write_text(json.dumps(good) + "\n")
    (tmp_path / "gsm8k" / "train.jsonl.gz").write_text(json.dumps(good) + "\n")  # plain text under a .gz name
    with pytest.raises(DataError, match=r"task 'gsm8k': .*train.jsonl.gz is not a valid gzip file"):
        data.gsm8k(tmp_path)
    (tmp_path / "humaneval").mkdir()
    (tmp_path / "humaneval" / "HumanEval.jsonl.gz").write_bytes(gzip.compress(b'{"prompt": "def f():"}\n')[:-12])
    with pytest.raises(DataError, match=r"task 'humaneval': .*HumanEval.jsonl.gz is not a valid gzip file"):
        data.humaneval(tmp_path)
    (tmp_path / "mbpp").mkdir()
    (tmp_path / "mbpp" / "mbpp.jsonl").write_text(json.dumps({"task_id": 11, "text": "t", "test_list": "assert 1"}))
    with pytest.raises(DataError, match=r"line 1: field 'test_list' must be list, got str"):
        data.mbpp(tmp_path)
