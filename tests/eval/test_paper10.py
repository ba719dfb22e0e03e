"""Every paper10 task runs offline from ../shared/data on a tiny model, in ONE eval call."""

from __future__ import annotations

import json
import math

import pytest

from remit.eval.tasks import PAPER10

EXPECTED = {
    "gsm8k": {"exact_match", "flexible_match", "bpb", "token_loss"},
    "math": {"exact_match", "bpb", "token_loss"},
    "humaneval": {"pass@1", "sampled_pass@1", "sampled_pass@2", "bpb", "token_loss"},
    "mbpp": {"pass@1", "sampled_pass@1", "sampled_pass@2", "bpb", "token_loss"},
    "arc_easy": {"acc", "acc_norm", "margin"},
    "arc_challenge": {"acc", "acc_norm", "margin"},
    "mmlu": {"acc", "margin"},
    "boolq": {"acc", "margin"},
    "piqa": {"acc", "acc_norm", "margin"},
    "winogrande": {"acc", "margin"},
}


@pytest.fixture(scope="module")
def paper10_run(tiny_model_dir, shared_data, tmp_path_factory):
    if not (shared_data / "gsm8k").is_dir():
        pytest.skip(f"shared data not found at {shared_data}")
    from remit.eval.run import EvalConfig, run

    out = tmp_path_factory.mktemp("paper10") / "run"
    cfg = EvalConfig(model=str(tiny_model_dir), suite="paper10", data_dir=str(shared_data), limit=2,
                     max_gen_toks=16, code_samples=2, code_ks=[1, 2], out_dir=str(out))
    return run(cfg)


def test_every_paper10_task_and_metric(paper10_run):
    res = json.loads((paper10_run / "results.json").read_text())
    assert list(res["tasks"]) == PAPER10
    for task, metrics in EXPECTED.items():
        assert set(res["tasks"][task]) == metrics, task
        for m, s in res["tasks"][task].items():
            vals = res["per_example"][task][m]
            assert s["n"] == len(vals) == 2, (task, m)
            assert all(math.isfinite(v) for v in vals)
            assert math.isclose(s["value"], sum(vals) / 2)
            if m in ("acc", "acc_norm", "exact_match", "flexible_match") or "pass@" in m:
                assert all(0.0 <= v <= 1.0 for v in vals), (task, m)
            if m in ("bpb", "token_loss"):
                # random init: loss per token near ln(vocab=512)=6.24; bytes per token of BPE text > 1
                assert 3.0 < s["value"] < 12.0, (task, m, s)
    # A random 50k-param model does not write working code or right answers.
    assert res["tasks"]["humaneval"]["pass@1"]["value"] == 0.0
    assert res["tasks"]["gsm8k"]["exact_match"]["value"] == 0.0
    md = (paper10_run / "results.md").read_text()
    assert all(f"| {t} |" in md for t in PAPER10)
    assert json.loads((paper10_run / "manifest.json").read_text())["stage"] == "eval"


def test_rerun_with_same_config_is_skipped(paper10_run, tiny_model_dir, shared_data):
    from remit.config import load_config
    from remit.eval.run import EvalConfig, run

    cfg = load_config(EvalConfig, paper10_run / "config.yaml")
    before = (paper10_run / "results.json").stat().st_mtime_ns
    assert run(cfg) == paper10_run
    assert (paper10_run / "results.json").stat().st_mtime_ns == before
