"""remit experiment: 2 arms x 2 seeds of the smoke flywheel end to end (parallel seeds, reuse on rerun), the
config checks, and the analysis against the seeds' own eval results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.eval import stats
from remit.eval.results import load_results
from remit.experiment.analyze import _contrast
from remit.experiment.config import Contrast
from remit.experiment.run import ExperimentConfig, run

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "experiments" / "smoke.yaml"


def _cfg(tmp_path, *over):
    return load_config(ExperimentConfig, SMOKE, [f"runs_dir={tmp_path}",
                                                 f"flywheel_config={REPO / 'configs/flywheel/smoke.yaml'}", *over])


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="listed twice"):
        _cfg(tmp_path, "seeds=[1,1]")
    with pytest.raises(ConfigError, match="flywheel.seed"):
        _cfg(tmp_path, "flywheel.seed=3")
    with pytest.raises(ConfigError, match="alternative"):
        _cfg(tmp_path, "hypotheses=[{treatment: remit-r1, baseline: vanilla, alternative: up}]")
    cfg = _cfg(tmp_path, "hypotheses=[{treatment: kd, baseline: vanilla}]", "analyze_only=true")
    with pytest.raises(ConfigError, match=r"hypotheses\[0\].treatment='kd' is not an arm.*remit-r1"):
        run(cfg)


def test_start_only_builds_the_start_and_trains_no_arm(tmp_path):
    with pytest.raises(ConfigError, match="start_only and analyze_only"):
        _cfg(tmp_path, "start_only=true", "analyze_only=true")
    out = run(_cfg(tmp_path, "start_only=true", "flywheel.pretrain.token_budget=20000"))
    root = tmp_path / "smoke"
    assert out == root / "start" and (root / "start" / "pretrain" / "model.safetensors").is_file()
    assert not list(root.glob("seed*")) and not (root / "summary.json").exists()


def test_contrast_sign_and_seed_level_test():
    vals = {"a": {0: {"value": 0.50, "per_example": [1, 0]}, 1: {"value": 0.40, "per_example": [0, 1]},
                  2: {"value": 0.70, "per_example": [1, 1]}},
            "b": {0: {"value": 0.45, "per_example": [1, 1]}, 1: {"value": 0.30, "per_example": [0, 0]},
                  2: {"value": 0.65, "per_example": [1, 0]}}}
    cfg = ExperimentConfig()
    r = _contrast(Contrast(treatment="a", baseline="b"), vals, [0, 1, 2], "world/world/exact_match", cfg)
    assert r["unit"] == "points" and r["per_seed"] == pytest.approx([5.0, 10.0, 5.0])
    assert r["p"] == pytest.approx(stats.seed_t([5.0, 10.0, 5.0], alternative="greater").p)
    assert r["ci"] == pytest.approx([stats.seed_t([5.0, 10.0, 5.0]).lo, stats.seed_t([5.0, 10.0, 5.0]).hi])
    bpb = {k: {s: {"value": 3.0 + v["value"], "per_example": []} for s, v in by.items()} for k, by in vals.items()}
    r = _contrast(Contrast(treatment="a", baseline="b"), bpb, [0, 1, 2], "world/world/bpb", cfg)
    assert r["unit"] == "raw" and r["per_seed"] == pytest.approx([-0.05, -0.10, -0.05])  # higher bpb = a loss
    assert "lower is better" in r["contrast"] and "ci_crossed_bootstrap" not in r


def test_experiment_end_to_end_reuses_and_reads_every_seed(tmp_path, capfd):
    cfg = _cfg(tmp_path)
    out = run(cfg)
    root = tmp_path / "smoke"
    s = json.loads((root / "summary.json").read_text())
    assert s["seeds"] == [0, 1] and set(s["hypotheses"]) == {"H1", "H2"} and set(s["exploratory"]) == {"base bpb"}
    for seed in (0, 1):  # the per-seed values are the seeds' own eval results
        res = load_results(root / f"seed{seed}" / "eval-vanilla-world")
        cell = s["arms"]["vanilla"]["world/world/exact_match"]
        assert cell["per_seed"][seed] == res["tasks"]["world"]["exact_match"]["value"]
        assert cell["per_example"][str(seed)] == res["per_example"]["world"]["exact_match"]
    h1, h2 = s["hypotheses"]["H1"], s["hypotheses"]["H2"]
    assert len(h1["per_seed"]) == 2 and h1["tested"] and h1["test"] == "paired t over seeds (n - 1 df)"
    assert h2["tested"] == (h1["rejected"] is True)  # fixed sequence
    assert (root / "contrasts.png").is_file() and "Pre-registered hypotheses" in out.read_text()
    # both seeds ran from the one start checkpoint
    for seed in (0, 1):
        conf = (root / "configs" / f"seed{seed}.yaml").read_text()
        assert str(root / "start" / "pretrain") in conf and f"seed: {seed}" in conf
    # a rerun trains nothing (every stage reused) and gives the same summary
    capfd.readouterr()
    run(cfg)
    again = json.loads((root / "summary.json").read_text())
    assert again["hypotheses"] == s["hypotheses"] and again["arms"] == s["arms"]
    second = (root / "logs" / "seed0.log").read_text().split("$ ")[-1].splitlines()
    stages = [ln for ln in second if ln.startswith("[flywheel] [") and " ... (elapsed" not in ln]
    assert len(stages) == 10 and all(ln.endswith(": reused (finished earlier)") for ln in stages)
    assert not (root / "seed0" / "report.md").exists()  # per-seed reports only when the experiment asks


def test_chain_followups_are_arms_of_the_chain_experiment():
    """chain-followups.yaml runs in chain.yaml's folder with the same seeds, start and flywheel, so it reuses every
    arm chain.yaml trained; its arms are valid and every contrast names one of them."""
    exp = REPO / "configs" / "experiments"
    chain, follow = load_config(ExperimentConfig, exp / "chain.yaml"), load_config(ExperimentConfig, exp / "chain-followups.yaml")
    for key in ("name", "seeds", "start_seed", "curves", "metric", "start_checkpoint", "flywheel_config"):
        assert getattr(follow, key) == getattr(chain, key), key
    def drop(fw):
        return {k: v for k, v in fw.items() if k != "chat_evals"}

    assert drop(follow.flywheel) == drop(chain.flywheel) and not chain.flywheel["chat_evals"]  # only evals added
    assert [a["name"] for a in follow.arms] == ["perdoc", "tau3", "chat-vanilla", "chat-remit", "chat-sft"]
    assert not follow.hypotheses and len(follow.exploratory) == 13  # decided after the main results: exploratory
    labels = {c.treatment for c in follow.exploratory} | {c.baseline for c in follow.exploratory}
    assert "chat-remit@chat" in labels and "chat-sft+post" in labels
