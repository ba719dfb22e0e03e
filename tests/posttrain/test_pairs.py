"""On-policy DPO pair building, checked with a deterministic fake generator: exact counts."""

from __future__ import annotations

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.posttrain.chain import PosttrainConfig
from remit.posttrain.dpo import DPOStageConfig, build_pairs, make_pairs
from remit.posttrain.generate import score, weighted_reward
from remit.posttrain.grpo import GRPOStageConfig

ROWS = [{"prompt": f"What is {a} + {a}?", "answer": str(2 * a), "kind": "arith"} for a in (1, 2, 3, 4)]


def fake_sampler(prompts, k):
    """Prompt i gets i correct completions (distinct texts) out of k; prompt 0 none, prompt 3 all (k=3)."""
    out = []
    for i, p in enumerate(prompts):
        a = int(p.split()[2])
        good = [f"{a} + {a} = {2 * a}. The answer is {2 * a}." + " " * j for j in range(i)]
        bad = [f"I think. The answer is {2 * a + 1 + j}." for j in range(k - i)]
        out.append((good + bad)[:k])
    return out


def test_build_pairs_exact_counts():
    cfg = DPOStageConfig(samples_per_prompt=3, pairs_per_prompt=2, rewards=["posttrain_helpers:exact_answer"])
    pairs, stats = make_pairs(ROWS, fake_sampler, weighted_reward(cfg.rewards), cfg)
    # correct/incorrect per prompt: (0,3) (1,2) (2,1) (3,0): pairs min(2, c*i) = 0, 2, 2, 0
    assert stats["pairs"] == len(pairs) == 4
    assert stats["prompts_with_pairs"] == 2
    assert stats["prompts_all_incorrect"] == 1 and stats["prompts_all_correct"] == 1
    assert stats["samples"] == 12 and stats["correct_samples"] == 6
    assert stats["sample_accuracy"] == pytest.approx(0.5)
    for p in pairs:
        assert p["chosen_reward"] == 1.0 and p["rejected_reward"] == 0.0
        assert p["chosen"].strip().endswith(f"The answer is {int(p['prompt'].split()[2]) * 2}.")
    # prompt 1: one correct, two incorrect -> pairs (c0, b0), (c0, b1) in that order
    p1 = [p for p in pairs if p["prompt"] == ROWS[1]["prompt"]]
    assert [p["rejected"] for p in p1] == ["I think. The answer is 5.", "I think. The answer is 6."]


def test_pair_order_uses_distinct_samples_first():
    rows = ROWS[:1]
    texts = [["good0", "good1", "bad0", "bad1"]]
    rewards = [[1.0, 1.0, 0.0, 0.0]]
    pairs, stats = build_pairs(rows, texts, rewards, pairs_per_prompt=3, correct_threshold=0.5)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("good0", "bad0"), ("good0", "bad1"), ("good1", "bad0")]
    pairs, _ = build_pairs(rows, texts, rewards, pairs_per_prompt=10, correct_threshold=0.5)
    assert len(pairs) == 4  # all of the 2 x 2 grid, no more


def test_duplicates_merged_and_threshold():
    rows = ROWS[:1]
    pairs, stats = build_pairs(rows, [["x", "x", "y", "y"]], [[0.7, 0.7, 0.2, 0.2]], pairs_per_prompt=4,
                               correct_threshold=0.5)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("x", "y")]
    pairs, stats = build_pairs(rows, [["x", "y"]], [[0.7, 0.2]], pairs_per_prompt=4, correct_threshold=0.8)
    assert pairs == [] and stats["prompts_all_incorrect"] == 1


def test_score_passes_columns_and_weights():
    fn = weighted_reward(["posttrain_helpers:exact_answer", "posttrain_helpers:even_length"], [2.0, 0.5])
    rows = ROWS[:2]
    values = score(fn, rows, [["The answer is 2.", "nope"], ["The answer is 4!"]])
    # "The answer is 2." has 16 chars (even): 2*1 + 0.5; "nope" even: 0.5; "The answer is 4!" 16 chars: 2 + .5
    assert values == [[2.5, 0.5], [2.5]]


def test_unknown_reward_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot import reward"):
        weighted_reward(["posttrain_helpers:nope"])
    with pytest.raises(ConfigError, match="reward_weights has 1 values"):
        weighted_reward(["posttrain_helpers:never", "posttrain_helpers:never"], [1.0])


MISMATCH = "reward_weights has 1 values but rewards has 2 (['world', 'format'])"


@pytest.mark.parametrize("cls", [DPOStageConfig, GRPOStageConfig])
def test_each_stage_config_refuses_mismatched_reward_weights(cls):
    with pytest.raises(ConfigError) as e:
        load_config(cls, None, ["rewards=[world, format]", "reward_weights=[1.0]"])
    assert str(e.value) == MISMATCH
    ok = load_config(cls, None, ["rewards=[world, format]", "reward_weights=[1.0, 0.5]"])
    assert ok.reward_weights == [1.0, 0.5]
    assert load_config(cls, None, ["rewards=[world, format]"]).reward_weights is None  # None = all 1.0


@pytest.mark.parametrize("stage", ["dpo", "grpo"])
def test_chain_refuses_mismatched_reward_weights_with_the_same_message(stage):
    with pytest.raises(ConfigError, match=r"reward_weights has 1 values but rewards has 2 \(\['world', 'format'\]\)"):
        load_config(PosttrainConfig, None, [f"{stage}.rewards=[world, format]", f"{stage}.reward_weights=[1.0]"])


def test_weighted_reward_refuses_mismatched_weights_with_the_same_message():
    with pytest.raises(ConfigError) as e:
        weighted_reward(["world", "format"], [1.0])
    assert str(e.value) == MISMATCH
