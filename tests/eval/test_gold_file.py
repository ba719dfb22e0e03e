"""Suite ``gold``: bits per byte of the targets of a held-out {"context", "target"} file."""

from __future__ import annotations

import json
import math

import pytest

from remit.errors import ConfigError, DataError

ROWS = [{"context": "Question: What is 2 + 3?\nAnswer:", "target": " 2 + 3 = 5. The answer is 5.", "src": "a"},
        {"context": "Problem:\nAdd 1 and 1.\n\nSolution:", "target": " $1 + 1 = \\boxed{2}$", "src": "b"},
        {"context": "Once", "target": " upon a time " * 80}]  # longer than the window: scored on its first tokens


def test_gold_suite_equals_a_direct_computation(tmp_path, tiny_model_dir):
    import torch

    from remit.eval.run import EvalConfig, evaluate
    from remit.models import load_model, load_tokenizer

    f = tmp_path / "gold.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    res = evaluate(EvalConfig(model=str(tiny_model_dir), suite="gold", gold_file=str(f), max_length=128))
    got = res["per_example"]["gold"]["bpb"]
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir, device="cpu").eval()
    for r, value in zip(ROWS, got, strict=True):
        ctx, target = tok(r["context"])["input_ids"], r["target"]
        ids = tok(target)["input_ids"]
        if len(ids) > 120:  # the window's gold-set rule: the first max_length - 8 tokens (scoring.fit_target)
            target = tok.decode(ids[:120])
        whole = tok(r["context"] + target)["input_ids"]
        x = torch.tensor([whole[-129:]])
        n = len(whole) - len(ctx)
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=x).logits[0, :-1].double(), -1)
        ll = float(sum(lp[i - 1, x[0, i]] for i in range(x.shape[1] - n, x.shape[1])))
        assert math.isclose(value, -ll / math.log(2) / len(target.encode()), rel_tol=1e-4), (r, value)
    assert res["tasks"]["gold"]["bpb"]["n"] == 3


def test_gold_needs_its_file(tmp_path, tiny_model_dir):
    from remit.eval.run import EvalConfig, evaluate

    with pytest.raises(ConfigError, match="gold_file: required"):
        evaluate(EvalConfig(model=str(tiny_model_dir), suite="gold"))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"context": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl line 1: missing field 'target'"):
        evaluate(EvalConfig(model=str(tiny_model_dir), suite="gold", gold_file=str(tmp_path / "bad.jsonl")))
