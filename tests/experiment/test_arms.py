"""remit experiment's extra arms and curves: a budget arm, a placebo arm and a post-trained arm per seed, trained
from their arm's config, evaluated like every arm, named by hypotheses; curves at fixed token counts scored
through remit eval from snapshots that are deleted once scored; everything reused on a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.experiment.run import ExperimentConfig, run

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "experiments" / "smoke-arms.yaml"


def _cfg(tmp_path, *over):
    return load_config(ExperimentConfig, CONFIG, [f"runs_dir={tmp_path}",
                                                  f"flywheel_config={REPO / 'configs/flywheel/smoke.yaml'}", *over])


def _metrics(d: Path) -> list[dict]:
    return [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_arm_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"arms\[0\].overrides.optim.lrr"):
        _cfg(tmp_path, "arms=[{name: x, from: vanilla, overrides: {optim.lrr: 1}}]")
    with pytest.raises(ConfigError, match="flywheel.arms: set by the experiment"):
        _cfg(tmp_path, "flywheel.arms=[]")
    with pytest.raises(ConfigError, match=r"hypotheses\[0\].treatment='tau3' is not an arm.*vanilla-half"):
        run(_cfg(tmp_path, "hypotheses=[{treatment: tau3, baseline: vanilla}]", "analyze_only=true"))


def test_budget_and_placebo_arms_train_from_their_arm_and_are_reused(tmp_path, capfd):
    cfg = _cfg(tmp_path)
    run(cfg)
    seed = tmp_path / "smoke-arms" / "seed0"
    man = {d: json.loads((seed / d / "manifest.json").read_text())
           for d in ("midtrain-vanilla", "midtrain-vanilla-half", "midtrain-placebo", "midtrain-remit-r1")}
    # the budget arm trained half the tokens, its LR decayed to the minimum at its own end (as vanilla's at its)
    assert man["midtrain-vanilla-half"]["tokens"] == 1024 and man["midtrain-vanilla"]["tokens"] == 2048
    half, van = _metrics(seed / "midtrain-vanilla-half"), _metrics(seed / "midtrain-vanilla")
    assert [r["step"] for r in half] == [1, 2] and [r["step"] for r in van] == [1, 2, 3, 4]
    assert half[-1]["lr"] == pytest.approx(van[-1]["lr"]) == pytest.approx(1e-3 * 0.01)
    assert half[0]["lr"] < van[0]["lr"]  # its own decay, not vanilla's first half
    assert half[0]["loss"] == pytest.approx(van[0]["loss"])  # same start, data order: the same first batch
    assert man["midtrain-placebo"]["method"] == "remit_placebo"
    assert man["midtrain-placebo"]["inputs"]["reference"] == man["midtrain-remit-r1"]["inputs"]["reference"]
    s = json.loads((tmp_path / "smoke-arms" / "summary.json").read_text())
    assert {"vanilla-half", "placebo", "vanilla", "remit-r1"} <= set(s["arms"])
    assert (seed / "eval-vanilla-half+post-world" / "manifest.json").is_file()
    res = json.loads((seed / "eval-vanilla-half-world" / "results.json").read_text())
    assert s["arms"]["vanilla-half"]["world/world/exact_match"]["per_seed"] == [
        res["tasks"]["world"]["exact_match"]["value"]]
    # curves: the start, one snapshot and the end of each arm's own budget, read from the evals that scored them
    bpb = s["curves"]["world/world/bpb"]
    assert [p[0] for p in bpb["vanilla"]["0"]] == [0, 1024, 2048]
    assert [p[0] for p in bpb["vanilla-half"]["0"]] == [0, 512, 1024]

    def value(folder: str) -> float:
        return json.loads((seed / folder / "results.json").read_text())["tasks"]["world"]["bpb"]["value"]

    assert bpb["vanilla"]["0"][0][1] == value("eval-pre-annealing-world") == bpb["vanilla-half"]["0"][0][1]
    assert bpb["vanilla"]["0"][2][1] == value("eval-vanilla-world")
    assert bpb["vanilla"]["0"][1][1] == value("curve-vanilla-1024-world")
    snap = json.loads((seed / "curve-vanilla-1024-world" / "manifest.json").read_text())["config"]["model"]
    assert snap.endswith("midtrain-vanilla/snapshots/tokens-000000001024") and not Path(snap).exists()
    assert not list((seed / "midtrain-vanilla" / "snapshots").iterdir())  # every snapshot deleted once scored
    assert bpb["vanilla"]["0"][2][1] < bpb["vanilla"]["0"][0][1]  # mid-training lowers the held-out bpb
    eff = s["efficiency"]["half"]
    assert eff["per_seed"][0]["target"] == bpb["vanilla"]["0"][2][1] and eff["per_seed"][0]["baseline_tokens"] == 2048
    assert (tmp_path / "smoke-arms" / "curves.png").is_file() and "Sample efficiency" in (tmp_path / "smoke-arms" / "results.md").read_text()
    # a rerun trains nothing and scores no point again
    capfd.readouterr()
    run(cfg)
    second = (tmp_path / "smoke-arms" / "logs" / "seed0.log").read_text().split("$ ")[-1].splitlines()
    done = [ln for ln in second if ln.startswith("[flywheel] [") and " ... (elapsed" not in ln]
    assert done and all(ln.endswith(": reused (finished earlier)") for ln in done)
    assert any("midtrain-vanilla-half: reused" in ln for ln in done)
