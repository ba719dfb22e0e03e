"""benchmarks/flywheel/analyze.py: the summary of issue #11 from a synthetic work folder with known effects."""

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "flywheel"))

from analyze import analyze, paired  # noqa: E402

N = 200
ACC = {"vanilla": 0.30, "remit-r1": 0.50, "sft-guided": 0.30, "remit-r2": 0.50, "kd": 0.25, "rho1": 0.30}


def _vals(p: float, rng: random.Random) -> list[float]:
    return [1.0 if rng.random() < p else 0.0 for _ in range(N)]


def _write(path: Path, doc: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / ("results.json" if "tasks" in doc else "manifest.json")).write_text(json.dumps(doc))


def _work(tmp_path: Path, seeds: list[int]) -> Path:
    gold = {}
    for s in seeds:
        rng = random.Random(s)
        run = tmp_path / f"seed{s}"
        _write(run, {"name": f"seed{s}"})
        for arm, p in ACC.items():
            for label, q in ((arm, p), (f"{arm}+post", min(1.0, p + 0.3))):
                acc = _vals(q, rng)
                bpb = [1.0 - 0.2 * p + 0.01 * rng.random() for _ in range(N)]
                _write(run / f"eval-{label}-world", {"tasks": {"world": {}},
                                                     "per_example": {"world": {"exact_match": acc, "bpb": bpb}}})
            bits = [40 * (1.0 - 0.2 * p) + rng.random() for _ in range(N)]
            gold[f"seed{s}/{arm}"] = {"bits": bits, "bytes": [40] * N}
            sft = _vals(0.4, rng)
            grpo = [1.0 if v or rng.random() < (0.5 if arm != "remit-r1" else 0.7) else 0.0 for v in sft]
            for stage, vals in (("sft", sft), ("dpo", sft), ("grpo", grpo)):
                extra = {"pairs": {"pairs": 50}} if stage == "dpo" else {"frac_reward_zero_std": 0.2}
                _write(run / f"post-{arm}" / stage, {"eval": {"post_values": vals}, **extra})
    (tmp_path / "gold_bpb.json").write_text(json.dumps(gold))
    return tmp_path


def test_summary_has_the_issue_schema_and_the_planted_effects(tmp_path):
    seeds = [0, 1, 2]
    work = _work(tmp_path / "work", seeds)
    md = analyze(work, seeds, tmp_path / "results", command="cmd")
    s = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert s["heldout_n"] == N and s["seeds"] == seeds and len(s["sft_acc"]) == len(s["grpo_acc"]) == 3
    assert s["grpo_gain_ci"][0] > 0.15 and all(lo > 0 for lo, _ in s["grpo_gain_ci_per_seed"])
    assert set(s["arms"]) == set(ACC) and s["arms"]["vanilla"]["base_acc"] == pytest.approx(0.30, abs=0.05)
    for key in ("b1_vs_b0", "r1_vs_r0", "rl_vs_sft_guided", "round2_vs_round1"):
        assert set(s[key]) >= {"delta", "ci", "metric"}
    assert s["b1_vs_b0"]["delta"] == pytest.approx(0.20, abs=0.06) and s["b1_vs_b0"]["ci"][0] > 0
    assert s["rl_vs_sft_guided"]["ci"][0] > 0
    assert s["round2_vs_round1"]["ci"][0] < 0 < s["round2_vs_round1"]["ci"][1]  # planted: no round-2 gain
    assert s["bpb"]["b1_vs_b0"]["delta"] < 0  # better accuracy came with lower bpb here
    assert s["r1_vs_r0"]["ci"][0] > 0 and s["arms"]["remit-r1"]["post_acc"] > s["arms"]["vanilla"]["post_acc"]
    assert s["command"] == "cmd" and "Does RL guidance beat SFT guidance?" in md.read_text()


def test_paired_ci_is_the_seed_level_t_interval():
    a = [[1.0, 0.0, 1.0, 1.0] * 25, [1.0, 1.0, 0.0, 1.0] * 25, [1.0, 1.0, 1.0, 1.0] * 25]
    b = [[0.0, 0.0, 1.0, 0.0] * 25, [1.0, 0.0, 0.0, 1.0] * 25, [0.0, 1.0, 1.0, 1.0] * 25]
    c = paired(a, b)
    assert c["per_seed"] == [0.5, 0.25, 0.25] and c["delta"] == pytest.approx(1 / 3)
    half = 4.302653 * (0.1443376 / 3 ** 0.5)  # t_{0.975, 2} * sd / sqrt(3)
    assert c["ci"] == pytest.approx([1 / 3 - half, 1 / 3 + half], abs=1e-5) and c["test"] == "paired t over seeds"
    lo, hi = c["ci_crossed_bootstrap"]
    assert lo < 1 / 3 < hi


def test_variant_table_states_its_verdicts():
    """variant.py's markdown: accuracies in %, deltas in points with their CI and the right verdict."""
    from variant import markdown

    ci = {"delta": -0.0108, "ci": [-0.0204, -0.0012], "per_seed": []}
    ns = {"delta": 0.0072, "ci": [-0.0132, 0.0256], "per_seed": []}
    bpb = {"delta": 0.0002, "ci": [0.0001, 0.0003], "per_seed": []}
    w = {"seed0": {"first": dict.fromkeys(["w_mean", "w_std", "w_frac_hi", "w_frac_lo"], 0.5),
                   "last": dict.fromkeys(["w_mean", "w_std", "w_frac_hi", "w_frac_lo"], 0.25)}}
    md = markdown({"arm": "perdoc", "overrides": ["method.per_document=true"], "seeds": [0], "command": "c",
                   "acc": {"perdoc": 0.5692, "remit-r1": 0.58, "vanilla": 0.562},
                   "vs": {"remit-r1": {"acc": ci, "bpb": bpb}, "vanilla": {"acc": ns, "bpb": bpb}},
                   "weights": {"perdoc": w, "remit-r1": w}})
    assert "| perdoc | 56.92% |" in md
    assert "| remit-r1 | -1.08 [-2.04, -0.12] (significant) | +0.0002 [+0.0001, +0.0003] (significant) |" in md
    assert "| vanilla | +0.72 [-1.32, +2.56] (not significant) |" in md
    assert "| perdoc | 0.500 / 0.250 | 0.500 / 0.250 |" in md

