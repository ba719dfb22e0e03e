"""The calibrated world's chain keys: step counts, hard steps, and the pre-training vs mid-training shift."""

from __future__ import annotations

import hashlib
import json
import random
import re

import pytest

from remit.config import load_config
from remit.config import to_dict as save_dict
from remit.errors import ConfigError
from remit.world import WorldConfig, generate_world, make_task
from remit.world.tasks import hard_step, with_slip

STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)\.")


def _hard(a: int, op: str, b: int) -> bool:
    return op == "*"


def test_chain_steps_and_hard_steps_are_right():
    rng = random.Random(5)
    n_ops, hard, total = set(), 0, 0
    for _ in range(400):
        t = make_task("chain", rng, 3, steps=(2, 6), hard=0.5)
        expr = t.prompt.removeprefix("What is ").removesuffix("?").removesuffix(" from left to right")
        value = None
        for tok in re.findall(r"[-+*]|\d+", expr):  # the written order is the arithmetic order
            if tok in "+-*":
                op = tok
            else:
                value = int(tok) if value is None else eval(f"{value} {op} {tok}")
        assert str(value) == t.answer, t
        assert ("from left to right" in t.prompt) == bool(re.search(r"[-+] \d+ .*\*", expr)), t  # said when it matters
        assert all(len(b) == 1 for b in re.findall(r"[-+*] (\d+)", expr))  # one-token operands: a fixed stride
        steps = STEP.findall(t.solution)
        n_ops.add(len(steps))
        for a, op, b, c in steps:
            assert eval(f"{a} {op} {b}") == int(c) >= 0, t
            hard += _hard(int(a), op, int(b))
            total += 1
        assert steps[-1][3] == t.answer
    assert n_ops == set(range(2, 7))
    assert 0.4 < hard / total < 0.6


def test_hard_step_doubles_or_triples():
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        value = rng.randint(0, 300)
        op, b, new = hard_step(rng, value)
        assert op == "*" and b in (2, 3) and new == value * b
        seen.add(b)
    assert seen == {2, 3}


def test_midtrain_brings_the_hard_steps_pretrain_rarely_shows():
    cfg = WorldConfig(n_pretrain_docs=300, n_midtrain_docs=300, n_sft=50, n_rl=10, n_eval=50, chain_steps=[2, 6],
                      hard_step_frac=0.4, pretrain_hard_step_frac=0.05, pretrain_reasoning_frac=1.0,
                      midtrain_general_frac=0.0)
    w = generate_world(cfg)

    def share(rows, key):
        steps = [s for r in rows for s in STEP.findall(r[key])]
        return sum(_hard(int(a), op, int(b)) for a, op, b, _ in steps) / len(steps)

    assert share(w["pretrain"], "text") < 0.1 < 0.3 < share(w["midtrain"], "text")
    assert share(w["eval"], "solution") > 0.3
    held = {r["prompt"] for r in w["eval"]}
    assert not any(f"Question: {p}\n" in r["text"] for p in held for r in w["pretrain"] + w["midtrain"])


def test_defaults_leave_the_chain_world_unchanged():
    # The digest of this world as the generator made it before the calibrated keys existed (commit 1874122):
    # with the keys at their defaults it draws the same numbers, and the keys stay out of the config hash.
    cfg = WorldConfig(n_pretrain_docs=100, n_midtrain_docs=50, n_sft=50, n_rl=20, n_eval=30, midtrain_chat_frac=0.5)
    digest = hashlib.sha256(json.dumps(generate_world(cfg)).encode()).hexdigest()
    assert digest == "d6ccfa9c7e9a233e69debdd139211acd96f1caf2d66f3185e7f4cffc5405aa57"
    saved = save_dict(load_config(WorldConfig, None, []))
    assert not {"chain_steps", "hard_step_frac", "pretrain_hard_step_frac", "slip_frac"} & set(saved)


@pytest.mark.parametrize("override, message", [
    (["chain_steps=[3,2]"], r"chain_steps=\[3, 2\]: give \[min, max\]"),
    (["hard_step_frac=1.5"], r"hard_step_frac"),
    (["kinds=[arith]", "hard_step_frac=0.2"], r"hard_step_frac: a key of the chain kind"),
    (["slip_frac=-0.1"], r"slip_frac"),
    (["kinds=[arith]", "slip_frac=0.2"], r"slip_frac: a key of the chain kind"),
])
def test_bad_calibrated_keys_are_one_line(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(WorldConfig, None, override)


def test_sft_direct_frac_changes_the_sft_split_only():
    base = dict(n_pretrain_docs=50, n_midtrain_docs=50, n_sft=400, n_rl=20, n_eval=30, direct_frac=0.7)
    a, b = generate_world(WorldConfig(**base)), generate_world(WorldConfig(**base, sft_direct_frac=0.3))
    assert all(a[k] == b[k] for k in ("pretrain", "midtrain", "rl", "eval"))
    assert [r["prompt"] for r in a["sft"]] == [r["prompt"] for r in b["sft"]]

    def direct(w):
        return sum(r["response"].startswith("The answer is") for r in w["sft"]) / len(w["sft"])

    assert 0.6 < direct(a) < 0.8 and 0.2 < direct(b) < 0.4


def test_pretrain_chat_frac_writes_pretraining_tasks_as_chats():
    base = dict(n_pretrain_docs=300, n_midtrain_docs=20, n_sft=20, n_rl=10, n_eval=20, pretrain_reasoning_frac=1.0)
    plain, chat = generate_world(WorldConfig(**base)), generate_world(WorldConfig(**base, pretrain_chat_frac=0.3))
    share = sum("<|user|>" in r["text"] for r in chat["pretrain"]) / len(chat["pretrain"])
    assert 0.2 < share < 0.4 and not any("<|user|>" in r["text"] for r in plain["pretrain"])
    assert all(plain[k] == chat[k] for k in ("midtrain", "sft", "rl", "eval"))


def _wrong_steps(solution: str) -> int:
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    return sum(int(r) != ops[op](int(a), int(b)) for a, op, b, r in STEP.findall(solution))


def test_a_slip_is_one_wrong_step_the_chain_goes_on_from():
    rng = random.Random(3)
    for _ in range(2000):
        t = make_task("chain", rng, 3, steps=(2, 6), hard=0.5)
        s = with_slip(t, rng)
        steps = STEP.findall(s)
        assert _wrong_steps(s) == 1 and "-" not in "".join(r for *_, r in steps)
        assert all(steps[i][3] == steps[i + 1][0] for i in range(len(steps) - 1))   # goes on from the wrong value
        assert s.endswith(f"The answer is {steps[-1][3]}.") and steps[-1][3] != t.answer
    other = make_task("arith", rng, 1)
    assert with_slip(other, rng) == other.solution                           # other kinds: unchanged


def test_slip_frac_slips_midtraining_and_sft_only():
    base = dict(n_pretrain_docs=200, n_midtrain_docs=200, n_sft=400, n_rl=50, n_eval=50, chain_steps=[2, 6],
                hard_step_frac=0.5, direct_frac=0.0, pretrain_reasoning_frac=1.0, midtrain_general_frac=0.0)
    a, b = generate_world(WorldConfig(**base)), generate_world(WorldConfig(**base, slip_frac=0.4))
    assert all(a[k] == b[k] for k in ("pretrain", "rl", "eval"))       # clean: pre-training, RL prompts, answers

    def slipped(rows, key):
        sols = [s for r in rows for s in re.findall(r"((?:\d+ [-+*] \d+ = \d+\. )+The answer is \d+\.)", r[key])]
        return sum(_wrong_steps(s) == 1 for s in sols) / len(sols)

    assert slipped(a["midtrain"], "text") == slipped(a["sft"], "response") == 0
    assert 0.3 < slipped(b["midtrain"], "text") < 0.5 and 0.3 < slipped(b["sft"], "response") < 0.5
    assert all(not r["response"].endswith(f"The answer is {r['answer']}.") == (_wrong_steps(r["response"]) == 1)
               for r in b["sft"])
