"""``remit prepare`` (remit.corpus): the quality recipe on a fake shared folder (CI) and on the real one."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from remit import cli
from remit.config import load_config
from remit.corpus import stage
from remit.corpus.stage import CorpusConfig
from remit.errors import DataError
from remit.manifest import read_manifest

LEAKED = "A farmer has seventeen sheep and buys twenty three more at the market, how many sheep does he own now"


def _write(path: Path, rows, *, jsonl: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows) if jsonl else json.dumps(rows)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def fake_shared(root: Path) -> Path:
    """Every input of the quality recipe, a few rows each; GSM8K train holds one test question (a leak)."""
    gsm = [{"question": f"Tom has {i} apples and gets {i + 1} more. How many now?",
            "answer": f"He has {i}+{i + 1} = <<{i}+{i + 1}={2 * i + 1}>>{2 * i + 1} apples.\n#### {2 * i + 1}"}
           for i in range(300)]
    gsm[5]["question"] = LEAKED + "?"
    _write(root / "gsm8k/train.jsonl.gz", gsm)
    _write(root / "gsm8k/test.jsonl", [{"question": LEAKED + "?", "answer": "17+23 = 40\n#### 40"}])
    _write(root / "math/train.jsonl.gz", [{"problem": f"Compute {i}+1.", "solution": f"It is $\\boxed{{{i + 1}}}$."}
                                          for i in range(20)])
    _write(root / "math/test.jsonl.gz", [{"problem": "Compute 2+2 in the ring of integers modulo seven please.",
                                         "solution": "$\\boxed{4}$"}])
    _write(root / "mbpp/mbpp.jsonl", [{"task_id": t, "text": f"Write a function f{t}.", "code": f"def f{t}():\r\n  return {t}",
                                      "test_list": [f"assert f{t}() == {t}"]} for t in (11, 600, 601, 974)])
    mc = [{"instruction": "Please choose the correct answer to the question: Which is hot?\n\nAnswer1: ice Answer2: fire"
                          "\n\nAnswer format: answer1/answer2", "answer": "answer2"}]
    for name in ("ARC-Easy_train.json", "ARC-Challenge_train.json", "openbookqa_train.json.gz"):
        _write(root / "commonsense_llm_adapters" / name, mc, jsonl=False)
    _write(root / "commonsense_llm_adapters/boolq_train.json.gz",
           [{"instruction": "Please answer the following question with true or false, question: is fire hot\n\n"
                            "Answer format: true/false", "answer": "true"}], jsonl=False)
    _write(root / "math_word_problems/mawps_trainset.json",
           [{"original_text": "Ann has 3 pens and buys 2 .", "equation": "X=3+2", "ans": "5.0"}], jsonl=False)
    _write(root / "gutenberg_children/gutenberg_children.jsonl.gz",
           [{"text": f"Once upon a time there was a fox number {i}. " * 60} for i in range(30)])
    (root / "tinyshakespeare").mkdir()
    with gzip.open(root / "tinyshakespeare/input.txt.gz", "wt", encoding="utf-8") as f:
        f.write("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 200)
    stem = {"stem": "Which of these is a mammal that lives in the ocean and breathes air?", "choices": []}
    for n in ("ARC-Easy-Test", "ARC-Challenge-Test"):
        _write(root / f"arc/{n}.jsonl", [{"question": stem}])
    _write(root / "humaneval/HumanEval.jsonl.gz", [{"prompt": "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\""}])
    _write(root / "superglue/BoolQ/val.jsonl", [{"question": "is the sun a star that is near the planet earth"}])
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_fake_shared_folder(tmp_path):
    shared = fake_shared(tmp_path / "shared")
    cfg = load_config(CorpusConfig, None, [f"out_dir={tmp_path / 'out'}", f"shared_data={shared}",
                                           "pretrain_chars=20000"])
    out = stage.run(cfg)
    rows = {n: [json.loads(x) for x in (out / f"{n}.jsonl").read_text().splitlines()] for n in
            ("pretrain", "midtrain", "sft", "rl", "eval", "heldout_gold")}
    m = read_manifest(out)
    # the GSM8K-train row that repeats a test question is dropped from every training file
    assert m["decontamination"]["dropped"]["midtrain"] == {"gsm8k_train": 1}
    assert m["decontamination"]["dropped"]["pretrain"] == {"gsm8k_train": 1}
    assert not any("seventeen sheep" in r["text"] for r in rows["midtrain"] + rows["pretrain"])
    # 300 GSM8K rows: 44 train + 256 held out; 100 of the held out feed the reward eval with 100 arithmetic rows
    assert len(rows["eval"]) == 200 and sum(r["prompt"].startswith("What is") for r in rows["eval"]) == 100
    assert len(rows["sft"]) == 43 + 1500 and m["sft"]["rows"] == 43 + 1500
    assert {r["src"] for r in rows["midtrain"]} == {"gsm8k_train", "math_train", "mbpp_601_974", "ARC-Easy_train",
                                                    "ARC-Challenge_train", "openbookqa_train", "boolq_train",
                                                    "mawps_train"}
    assert "Question: Which is hot?\nAnswer: fire" in [r["text"] for r in rows["midtrain"]]
    assert "Question: Ann has 3 pens and buys 2 .\nAnswer: 3+2 = 5.\nThe answer is 5." in [r["text"] for r in rows["midtrain"]]
    assert sum(r["src"] == "mbpp_601_974" for r in rows["midtrain"]) == 2  # task ids 601-974 only
    assert rows["heldout_gold"][0] == {"context": f"Question: {LEAKED}?\nAnswer:", "target": " 17+23 = 40\n#### 40",
                                       "src": "gsm8k_test"}
    assert set(m["input_sha256"]) == set(stage.RECIPES["quality"]().inputs)
    # a second run with the same config and inputs is reused; a changed input file is not
    stamp, before = m["finished_at"], _sha(out / "midtrain.jsonl")
    assert stage.run(cfg) == out and read_manifest(out)["finished_at"] == stamp
    _write(shared / "math_word_problems/mawps_trainset.json",
           [{"original_text": "Bo has 4 cups .", "equation": "X=4", "ans": "4"}], jsonl=False)
    stage.run(cfg)
    assert _sha(out / "midtrain.jsonl") != before
    texts = [json.loads(x)["text"] for x in (out / "midtrain.jsonl").read_text().splitlines()]
    assert "Question: Bo has 4 cups .\nAnswer: 4 = 4.\nThe answer is 4." in texts


def test_missing_folder_or_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REMIT_SHARED_DATA", raising=False)
    assert cli.main(["prepare", f"shared_data={tmp_path / 'nowhere'}", f"out_dir={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"shared data folder not found: {tmp_path / 'nowhere'}" in err
    shared = fake_shared(tmp_path / "shared")
    (shared / "mbpp/mbpp.jsonl").unlink()
    monkeypatch.setenv("REMIT_SHARED_DATA", str(shared))
    with pytest.raises(DataError, match=f"input file not found: {shared / 'mbpp/mbpp.jsonl'}"):
        stage.run(CorpusConfig(out_dir=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


# sha256 of the files benchmarks/quality/prepare.py (version 2) wrote from ../shared/data with the committed
# recipe (pretrain_chars 6,000,000, seed 0): the library must write the same bytes.
COMMITTED = {
    "pretrain": "9ac81bc1f54a00782ec69d6d28666797ec0e529f590c84e4f0edc3e4f49758b6",
    "midtrain": "bc7b86bc6424c97c60736b98a0beb9c8ffa415fe82a2d81e5f634a009df54fb3",
    "sft": "94cc8ca58cf23d256fa2e057d974a9df767bbdddc12cf539858c670c871bd4b5",
    "rl": "91c8ca398f4d6e8acfe30ce0a58f0633e9f1761b1a487ea234dc0ee1580cbeda",
    "eval": "3a38bde029f7bf01dfa6ed7b5997b27e63f17faae8d546237d0256b8ffb93397",
    "heldout_gold": "1e01b8effbd3da926a7dd627d77b027e013a745547f14f4968db616d694ba62e",
}


def test_real_shared_data_gives_the_committed_files(tmp_path, shared_data):
    shared = shared_data
    if not (shared / "gsm8k").is_dir():
        pytest.skip(f"no shared data at {shared} (set REMIT_SHARED_DATA)")
    cfg = load_config(CorpusConfig, Path(__file__).resolve().parents[2] / "configs/data/quality.yaml",
                      [f"out_dir={tmp_path / 'q'}", f"shared_data={shared}"])
    out = stage.run(cfg)
    assert {n: _sha(out / f"{n}.jsonl") for n in COMMITTED} == COMMITTED
    assert read_manifest(out)["decontamination"]["probes"] == 12180  # as benchmarks/results/quality/results.json
