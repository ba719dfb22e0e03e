"""The gates G1-G4 and the manipulation checks: each rule on hand-made numbers (both sides of each threshold),
the transmission slope through the origin by hand, a missing input (``pass: null`` with its reason), the YAML
section, and one end-to-end run of the smoke experiment whose gates are read from its seed folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.experiment import gates
from remit.experiment.gates import GatesConfig

REPO = Path(__file__).resolve().parents[2]
G = GatesConfig()


def _g1(**over):
    v = {"sft": 30.0, "rl": 50.0, "gain": 20.0, "gain_ci": [15.0, 25.0], "zero_spread": 0.3}
    return gates.gate_g1({0: v | over}, G)


def test_g1_each_condition_can_fail():
    assert _g1()["pass"] is True
    for over in ({"sft": 19.9}, {"sft": 50.1}, {"gain": 9.9}, {"gain_ci": [-0.5, 20.0]}, {"rl": 39.0},
                 {"rl": 81.0}, {"zero_spread": 0.5}):
        assert _g1(**over)["pass"] is False, over
    assert _g1(sft=20.0, gain=10.0, rl=80.0)["pass"] is True  # the bounds are inside
    assert "SFT in [20, 50]" in _g1()["rule"]


def test_g1_passes_only_when_every_seed_passes():
    ok = {"sft": 30.0, "rl": 50.0, "gain": 20.0, "gain_ci": [15.0, 25.0], "zero_spread": 0.3}
    mixed = gates.gate_g1({0: ok, 1: ok | {"gain_ci": [-1.0, 30.0]}}, G)
    assert mixed["pass"] is False and mixed["per_seed_pass"] == {"0": True, "1": False}  # the table shows which
    md = "\n".join(gates.to_markdown({"gates": {"G1": mixed, **{g: {"value": {}, "pass": None, "rule": "r"}
                                                              for g in ("G2", "G3", "G4")}}}))
    assert "| G1 | 0 |" in md and "| pass |" in md and "| **G1** | all | 1 of 2 seeds pass | **FAIL** |" in md
    out = gates.gate_g1({0: ok, 1: ok}, G)
    assert out["pass"] is True and set(out["value"]) == {"0", "1"}


def test_slope_through_origin_by_hand():
    # y = b x without intercept: b = sum(xy) / sum(x^2) = (1*0.5 + 2*0.6 + -3*-2) / (1 + 4 + 9) = 7.7 / 14
    assert gates.slope_through_origin([1.0, 2.0, -3.0], [0.5, 0.6, -2.0]) == pytest.approx(7.7 / 14)
    assert math.isnan(gates.slope_through_origin([0.0, 0.0], [1.0, 2.0]))


def test_g2_gap_and_slope_against_the_full_arm():
    base = {"vanilla": 40.0, "vanilla-half": 30.0, "remit-r1": 44.0}
    post = {"vanilla": 60.0, "vanilla-half": 55.0, "remit-r1": 62.0}
    v = gates.g2_numbers(base, post, G)
    assert v["budget_gap"] == pytest.approx(5.0)
    assert v["base_gaps"] == {"vanilla-half": -10.0, "remit-r1": 4.0}
    # (-10 * -5 + 4 * 2) / (100 + 16) = 58 / 116 = 0.5
    assert v["slope"] == pytest.approx(0.5)
    assert gates.gate_g2({0: v}, G)["pass"] is True
    low = gates.g2_numbers(base, post | {"vanilla-half": 58.0}, G)  # gap 2 < 3, slope 0.33 >= 0.3
    assert low["slope"] == pytest.approx((20 + 8) / 116) and gates.gate_g2({0: low}, G)["pass"] is False
    # the formats both arms were evaluated in: remit-r1's chat value is compared with vanilla's only
    fm = gates.g2_numbers({"vanilla": {"plain": 40.0, "chat": 20.0}, "vanilla-half": {"plain": 30.0},
                           "remit-r1": {"plain": 44.0, "chat": 30.0}}, post, G)
    assert fm["base_gaps"] == {"vanilla-half": -10.0, "remit-r1": pytest.approx(7.0)}
    flat = gates.g2_numbers(base, post | {"remit-r1": 60.0, "vanilla-half": 56.0}, G)  # slope 40/116 = 0.34
    assert gates.gate_g2({0: flat}, G)["pass"] is True
    flatter = gates.g2_numbers(base, post | {"remit-r1": 58.0, "vanilla-half": 56.0}, G)  # (40 - 8) / 116 = 0.28
    assert gates.gate_g2({0: flatter}, G)["pass"] is False


def test_g3_and_g4_thresholds():
    ok = {"corr": 0.9, "diff_share": 0.2, "saturation": 0.1}
    assert gates.gate_g3({0: ok}, G)["pass"] is True
    for over in ({"corr": 0.96}, {"diff_share": 0.05}, {"saturation": 0.3}):
        assert gates.gate_g3({0: ok | over}, G)["pass"] is False, over
    assert gates.gate_g4({0: {"max": 0.005}}, G)["pass"] is True
    assert gates.gate_g4({0: {"max": 0.01}}, G)["pass"] is False  # "< 1%"


def test_missing_input_is_null_with_its_reason_unless_a_present_part_fails():
    out = gates.gate_g3({0: {"corr": 0.9, "diff_share": 0.2, "missing": "no mid-training arm 'remit-r1'"}}, G)
    assert out["pass"] is None and "seed 0: no mid-training arm 'remit-r1'" in out["reason"]
    out = gates.gate_g3({0: {"corr": 0.99, "missing": "no saturation"}}, G)
    assert out["pass"] is False  # what is there already fails
    assert gates.gate_g2({0: gates.g2_numbers({"vanilla": 1.0}, {"vanilla": 2.0}, G)}, G)["pass"] is None


def test_gates_section_of_the_experiment_config(tmp_path):
    cfg = load_config(gates_cls(), None, [f"runs_dir={tmp_path}", "gates={}"])
    assert cfg.gates == GatesConfig()
    assert load_config(gates_cls(), None, []).gates is None
    assert load_config(gates_cls(), None, ["gates.corr_max=0.9"]).gates.corr_max == 0.9
    with pytest.raises(ConfigError, match=r"gates.sft_range=\[50.0, 20.0\]"):
        load_config(gates_cls(), None, ["gates.sft_range=[50, 20]"])
    with pytest.raises(ConfigError, match="Unknown config key 'gates.corr'"):
        load_config(gates_cls(), None, ["gates.corr=0.9"])
    with pytest.raises(ConfigError, match="g3_model='P': give vanilla"):
        load_config(gates_cls(), None, ["gates.g3_model=P"])


def gates_cls():
    from remit.experiment.config import ExperimentConfig

    return ExperimentConfig


@pytest.mark.slow
def test_gates_end_to_end_on_the_smoke_experiment(tmp_path):
    from remit.experiment.run import run

    cfg = load_config(gates_cls(), REPO / "configs" / "experiments" / "smoke-arms.yaml", [
        f"runs_dir={tmp_path}", f"flywheel_config={REPO / 'configs/flywheel/smoke.yaml'}", "curves={}",
        "flywheel.posttrain.stages=[sft,grpo]", "flywheel.chat_evals=[vanilla]", "flywheel.eval.world_probe=true",
        "gates={half_arm: vanilla-half}"])
    run(cfg)
    root = tmp_path / "smoke-arms"
    s = json.loads((root / "summary.json").read_text())
    seed = root / "seed0"
    man = json.loads((seed / "post-vanilla" / "manifest.json").read_text())["stages"]
    sft = json.loads((Path(man["sft"]["out"]) / "manifest.json").read_text())["eval"]
    g1 = s["gates"]["G1"]["value"]["0"]
    assert g1["sft"] == pytest.approx(100 * sft["post"]) and g1["chain"] == "vanilla+post"
    assert s["gates"]["G1"]["pass"] is False  # a 2-step SFT of a tiny model is below 20%
    clipped = [json.loads(x)["completions/clipped_ratio"] for x in
               (Path(man["grpo"]["out"]) / "metrics.jsonl").read_text().splitlines() if "clipped_ratio" in x]
    assert s["gates"]["G4"]["value"]["0"]["clipped"]["vanilla+post"] == pytest.approx(sum(clipped) / len(clipped))
    g2 = s["gates"]["G2"]["value"]["0"]
    assert set(g2["post"]) == {"vanilla", "remit-r1", "vanilla-half"}
    assert g2["budget_gap"] == pytest.approx(g2["post"]["vanilla"] - g2["post"]["vanilla-half"])
    g3 = s["gates"]["G3"]["value"]["0"]
    assert -1.0 <= g3["corr"] <= 1.0 and 0.0 <= g3["saturation"] <= 1.0
    assert g3["g3_model"] == "vanilla" and -1.0 <= g3["corr_from_p"] <= 1.0
    assert "scored from vanilla" in s["gates"]["G3"]["rule"]
    checks = s["checks"]["0"]
    assert checks["kl_ref_p"] > 0 and set(checks["p_worked"]) == {"vanilla@chat", "vanilla+post", "remit-r1+post",
                                                                   "vanilla-half+post"}
    md = (root / "results.md").read_text()
    assert "## Gates" in md and "## Manipulation checks" in md
    # the models' numbers are cached: a rerun reads checks.json (here: a planted value) instead of the models
    cache = json.loads((seed / "checks.json").read_text())
    cache["values"]["corr"] = 0.123
    (seed / "checks.json").write_text(json.dumps(cache))
    again, _ = gates.evaluate(cfg.gates, root, [0], cfg.metric)
    assert again["G3"]["value"]["0"]["corr"] == 0.123
    (seed / "checks.json").unlink()  # without it they are computed again, the same
    assert gates.evaluate(cfg.gates, root, [0], cfg.metric)[0]["G3"]["value"]["0"]["corr"] == pytest.approx(g3["corr"])
    # scored from P instead (the gate's model up to calibration attempt J): the value reported as corr_from_p
    at_p = gates.evaluate(GatesConfig(half_arm="vanilla-half", g3_model="pre_annealing"), root, [0], cfg.metric)[0]
    assert at_p["G3"]["value"]["0"]["corr"] == pytest.approx(g3["corr_from_p"])
    assert at_p["G3"]["value"]["0"]["g3_model"] != g3["g3_model"]


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def test_g1_and_g4_read_a_hand_made_chain_with_paths_relative_to_the_flywheel(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run folder is read from elsewhere than where the flywheel ran
    seed = tmp_path / "exp" / "seed0"
    _write(seed / "manifest.json", {"stages": {"post-vanilla": {"path": "runs/exp/seed0/post-vanilla",
                                                                "kind": "posttrain", "label": "vanilla+post"}},
                                    "roles": {"rl": "vanilla+post"},
                                    "evals": {"vanilla+post": {"world": "runs/exp/seed0/eval-vanilla+post-world"}}})
    rel = "runs/exp/seed0/post-vanilla"
    _write(seed / "post-vanilla" / "manifest.json", {"stages": {"sft": {"out": f"{rel}/sft"},
                                                                "grpo": {"out": f"{rel}/grpo"}}})
    sft, grpo = [0.0] * 7 + [1.0] * 3, [0.0] * 3 + [1.0] * 7  # 30% -> 70%: +40 points, paired
    _write(seed / "post-vanilla" / "sft" / "manifest.json", {"eval": {"post": 0.3, "n": 10, "post_values": sft}})
    _write(seed / "post-vanilla" / "grpo" / "manifest.json", {
        "frac_reward_zero_std": 0.25, "eval": {"post": 0.7, "n": 10, "pre_values": sft, "post_values": grpo}})
    _write(seed / "post-vanilla" / "grpo" / "metrics.jsonl",
           '{"step": 1, "completions/clipped_ratio": 0.0}\n{"step": 2, "completions/clipped_ratio": 0.01}\n'
           '{"train_runtime": 1.0}\n')
    g, checks = gates.evaluate(G, tmp_path / "exp", [0], "world/world/exact_match")
    v = g["G1"]["value"]["0"]
    assert (v["sft"], v["rl"], v["gain"], v["zero_spread"]) == (pytest.approx(30.0), pytest.approx(70.0),
                                                                pytest.approx(40.0), 0.25)
    assert v["gain_ci"][0] > 0 and g["G1"]["pass"] is True
    assert g["G4"]["value"]["0"]["max"] == pytest.approx(0.005) and g["G4"]["pass"] is True
    # no evaluations, no models, no ReMiT arm: null with the reasons, not a crash
    assert g["G2"]["pass"] is None and "vanilla+post" in g["G2"]["reason"]
    assert g["G3"]["pass"] is None and "pre-annealing model P" in g["G3"]["reason"]
    assert checks["0"]["grpo_gain"]["gain"] == pytest.approx(40.0) and checks["0"]["corr_w"] is None
    assert checks["0"]["p_worked"] == {"missing": "no world evaluation of vanilla+post yet"}
    md = "\n".join(gates.to_markdown({"gates": g, "checks": checks}))
    assert "| G3 | 0 |" in md and "| **G1** | all | 1 of 1 seeds pass | **pass** |" in md
    assert g["G1"]["per_seed_pass"] == {"0": True} and g["G2"]["per_seed_pass"] == {"0": None}
