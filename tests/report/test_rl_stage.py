"""The RL-stage numbers: paired SFT vs RL gain from the stages' per-prompt held-out rewards."""

from __future__ import annotations

import json

import pytest

from remit.report.rl_stage import chain_numbers


def _stage(root, name, pre, post, **extra):
    d = root / name
    d.mkdir(parents=True)
    ev = {"pre": None if pre is None else sum(pre) / len(pre), "post": sum(post) / len(post), "n": len(post),
          "pre_values": pre, "post_values": post}
    (d / "manifest.json").write_text(json.dumps({"stage": name, "eval": ev, **extra}))
    return {"out": str(d)}


def test_gain_and_ci_follow_the_per_prompt_values(tmp_path):
    n = 200
    sft = [1.0 if i % 4 == 0 else 0.0 for i in range(n)]  # 25%
    dpo = list(sft)
    grpo = [1.0 if i % 2 == 0 else 0.0 for i in range(n)]  # 50%, and every SFT success kept
    stages = {"sft": _stage(tmp_path, "sft", None, sft),
              "dpo": _stage(tmp_path, "dpo", sft, dpo, pairs={"pairs": 12}),
              "grpo": _stage(tmp_path, "grpo", dpo, grpo, frac_reward_zero_std=0.3)}
    c = chain_numbers(stages, n_boot=500)
    assert c["sft"] == 0.25 and c["rl"] == 0.5 and c["rl_stage"] == "grpo" and c["n"] == n
    assert c["gain"] == pytest.approx(0.25) and 0 < c["ci"][0] < 0.25 < c["ci"][1]
    assert c["grpo_stage_gain"] == pytest.approx(0.25) and c["dpo_pairs"] == 12 and c["grpo_zero_std"] == 0.3


def test_no_gain_has_a_ci_around_zero(tmp_path):
    vals = [1.0 if i % 3 == 0 else 0.0 for i in range(90)]
    flipped = vals[1:] + vals[:1]  # same mean, different prompts
    stages = {"sft": _stage(tmp_path, "sft", None, vals), "grpo": _stage(tmp_path, "grpo", vals, flipped)}
    c = chain_numbers(stages, n_boot=500)
    assert c["gain"] == pytest.approx(0.0) and c["ci"][0] < 0 < c["ci"][1]


def test_without_an_sft_eval_there_is_nothing_to_say(tmp_path):
    assert chain_numbers({"grpo": _stage(tmp_path, "grpo", [0.0], [1.0])}) is None
