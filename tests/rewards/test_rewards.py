"""Verifiable rewards: real GSM8K/MATH/HumanEval/MBPP examples (skipped without ../shared/data) + synthetic ones."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from remit.errors import ConfigError, DataError
from remit.rewards import (
    code_reward,
    completion_text,
    extract_code,
    format_reward,
    get_reward,
    math_reward,
    reward_with_reasons,
    world_reward,
)
from remit.world import WorldConfig, generate_world


@pytest.fixture(autouse=True)
def _sandbox_policy():
    """The scoring logic is tested here, the sandbox's layers in tests/sandbox: run even where one is missing."""
    from remit.sandbox import configure

    configure(unenforced_ok=True)
    yield
    configure(unenforced_ok=False)

SHARED = Path(os.environ.get("REMIT_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


def _jsonl(rel: str, n: int) -> list[dict]:
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{path} not available")
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def test_completion_formats():
    conv = [{"role": "assistant", "content": "The answer is 3."}]
    assert completion_text(conv) == "The answer is 3." and completion_text("x") == "x"
    assert math_reward(["q", "q"], [conv, "The answer is 3."], answer=["3", "4"]) == [1.0, 0.0]
    assert world_reward(None, [conv], kind=["arith"], answer=["3"], trainer_state=object()) == [1.0]


def test_gsm8k_golds():
    rows = _jsonl("gsm8k/test.jsonl", 12)
    golds = [r["answer"] for r in rows]
    finals = [g.split("####")[-1].strip() for g in golds]
    prompts = [r["question"] for r in rows]
    # the reference solution itself, the world's answer format, and a wrong final answer
    assert math_reward(prompts, golds, answer=golds) == [1.0] * 12
    assert math_reward(prompts, [f"Step by step... The answer is {a}." for a in finals], answer=golds) == [1.0] * 12
    wrong = [f"{finals[0]} is tempting, but the answer is {int(a.replace(',', '')) + 1}." for a in finals]
    res = reward_with_reasons("math", prompts, wrong, answer=golds)
    assert [s.value for s in res] == [0.0] * 12 and all(s.reason.startswith("wrong answer") for s in res)


def test_math_boxed_solutions():
    rows = [r for r in _jsonl("math/test.jsonl.gz", 40) if r["level"] in ("Level 1", "Level 2")][:8]
    assert rows
    sols = [r["solution"] for r in rows]
    assert math_reward(None, sols, solution=sols) == [1.0] * len(rows)
    wrong = ["Thus the result is $\\boxed{123457}$." for _ in rows]
    assert math_reward(None, wrong, solution=sols) == [0.0] * len(rows)


def test_math_synthetic_and_failure_reasons():
    r = reward_with_reasons("math", None, ["$\\frac{1}{2}$, so the answer is $\\boxed{0.5}$", "The answer is 1/2.",
                                           "", "no number here", "The answer is -10."],
                            answer=["\\frac{1}{2}", "0.5", "3", "3", "#### -10"])
    assert [s.value for s in r] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert r[2].reason == "empty completion" and r[3].reason == "no answer found in the completion"
    assert reward_with_reasons("math", None, ["The answer is 3."], answer=[None])[0].reason.startswith("no gold")


def test_world_reward_on_world_tasks():
    w = generate_world(WorldConfig(n_pretrain_docs=0, n_midtrain_docs=0, n_sft=40, n_rl=0, n_eval=1))
    sft = w["sft"]
    cols = dict(kind=[r["kind"] for r in sft], answer=[r["answer"] for r in sft])
    prompts = [r["prompt"] for r in sft]
    assert world_reward(prompts, [r["response"] for r in sft], **cols) == [1.0] * 40
    assert format_reward(prompts, [r["response"] for r in sft]) == [1.0] * 40
    truncated = [r["response"].rsplit("The answer", 1)[0] for r in sft]
    assert world_reward(prompts, truncated, **cols) == [0.0] * 40
    assert format_reward(prompts, truncated) == [0.0] * 40
    assert get_reward("auto")(prompts, [r["response"] for r in sft], **cols) == [1.0] * 40
    with pytest.raises(DataError, match="needs a dataset column 'kind'"):
        world_reward(prompts, truncated, answer=cols["answer"])
    with pytest.raises(DataError, match="one value per completion"):
        world_reward(prompts, truncated, kind=cols["kind"][:3], answer=cols["answer"])


def test_humaneval_canonical_passes_and_broken_fails():
    rows = _jsonl("humaneval/HumanEval.jsonl.gz", 4)
    prompts = [r["prompt"] for r in rows]
    cols = dict(test=[r["test"] for r in rows], entry_point=[r["entry_point"] for r in rows])
    assert code_reward(prompts, [r["canonical_solution"] for r in rows], **cols) == [1.0] * 4
    full = [f"```python\n{r['prompt']}{r['canonical_solution']}```" for r in rows]  # a whole function, fenced
    assert code_reward(prompts, full, **cols) == [1.0] * 4
    res = reward_with_reasons("code", prompts, ["    return None\n"] * 4, **cols)
    assert [s.value for s in res] == [0.0] * 4 and all(s.reason.startswith("sandbox error") for s in res)


def test_mbpp_reference_code_passes():
    rows = _jsonl("mbpp/mbpp.jsonl", 4)
    cols = dict(test_list=[r["test_list"] for r in rows], test_setup_code=[r["test_setup_code"] for r in rows])
    assert code_reward([r["text"] for r in rows], [r["code"] for r in rows], **cols) == [1.0] * 4


def test_code_sandbox_failures_give_zero_with_reason():
    tests = ["assert f(2) == 4"] * 5
    completions = ["def f(x):\n    return x * 2\n",
                   "def f(x):\n    while True:\n        pass\n",
                   "import os\ndef f(x):\n    os.fork()\n    return 4\n",
                   "def f(x):\n    open('/etc/remit_pwned', 'w')\n    return 4\n",
                   "def f(x):\n    print('y' * 10**6)\n    return 4\n"]
    res = reward_with_reasons("code", None, completions, test=tests, timeout_s=[1.0] * 5)
    assert [s.value for s in res] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert res[1].reason == "sandbox timeout" and res[2].reason.startswith("sandbox blocked")
    assert res[3].reason.startswith("sandbox blocked") and res[4].reason.startswith("sandbox output_limit")
    assert not Path("/etc/remit_pwned").exists()
    assert reward_with_reasons("code", None, ["x = 1"], test=[""])[0].reason.startswith("no tests")


def test_extract_code_and_registry():
    assert extract_code("Here:\n```python\nprint(1)\n```\nand\n```py\nprint(2)\n```") == "print(2)\n"
    assert extract_code("def f(): pass") == "def f(): pass"
    assert get_reward("math") is math_reward and get_reward("code_reward") is code_reward
    assert get_reward("world").__name__ == "world_reward"
    with pytest.raises(ConfigError, match="unknown reward 'bleu'"):
        get_reward("bleu")
