"""The confirmatory surface of ``remit experiment``: lists of arms, test kinds, controls, standalone hypotheses and
the sequential extension; each parsed, validated (one line naming the key) and tested on hand values."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from remit.config import load_config
from remit.errors import ConfigError, DataError
from remit.eval import stats
from remit.experiment.analyze import _contrast, _hypotheses, _side, _staged, _verdict, analyze
from remit.experiment.config import Contrast, ExperimentConfig
from remit.experiment.run import _config_file, run

FULL = [
    "seeds=[0,1,2,3,4]",
    "hypotheses=[{name: H1, treatment: [remit-r1, remit-r1@chat], baseline: [vanilla, vanilla@chat], margin: 2.0},"
    " {name: H2, treatment: remit-r1+post@chat, baseline: vanilla+post@chat, margin: 1.5},"
    " {name: H5, treatment: remit-half, baseline: vanilla, test: noninferiority, margin: 1.0, standalone: true}]",
    "controls=[{name: placebo, treatment: placebo, baseline: vanilla, test: equivalence, margin: 2.0}]",
    "extension={seeds: [5,6,7,8,9], alpha_first: 0.01, window: [0.01, 0.30], hypotheses: [H1, H2]}",
]


def _cfg(*over: str) -> ExperimentConfig:
    return load_config(ExperimentConfig, None, list(over))


def test_confirmatory_keys_parse():
    cfg = _cfg(*FULL)
    h1, h2, h5 = cfg.hypotheses
    assert h1.treatment == ["remit-r1", "remit-r1@chat"] and h1.label == "H1" and h2.treatment == "remit-r1+post@chat"
    assert h1.arms == ["remit-r1", "remit-r1@chat", "vanilla", "vanilla@chat"]
    assert (h5.test, h5.margin, h5.standalone, h1.test, h1.standalone) == ("noninferiority", 1.0, True, "superiority", False)
    assert cfg.controls[0].test == "equivalence"
    assert cfg.extension.seeds == [5, 6, 7, 8, 9] and cfg.extension.window == [0.01, 0.30]
    assert cfg.stage1_seeds == [0, 1, 2, 3, 4]
    assert _cfg(*FULL[:2], "seeds=[0,1,2,3,4,5,6,7,8,9]", *FULL[3:]).stage1_seeds == [0, 1, 2, 3, 4]
    assert not _cfg("extension={}").extension and _cfg().controls == []


@pytest.mark.parametrize("over,match", [
    ("hypotheses=[{treatment: [], baseline: vanilla}]", r"hypotheses\[0\].treatment: name an arm label"),
    ("hypotheses=[{treatment: [a, a], baseline: vanilla}]", r"hypotheses\[0\].treatment=\['a', 'a'\]: an arm is listed twice"),
    ("hypotheses=[{treatment: [a, b], baseline: [b, a]}]", r"treatment = baseline = 'mean\(a, b\)'"),
    ("hypotheses=[{treatment: a, baseline: b, test: equivalent}]", r"hypotheses\[0\].test='equivalent' is not accepted"),
    ("hypotheses=[{treatment: a, baseline: b, test: noninferiority}]", r"hypotheses\[0\].margin=0: test: noninferiority needs"),
    ("controls=[{treatment: a, baseline: b, test: equivalence, margin: 2, alternative: less}]",
     r"controls\[0\].alternative='less': only test: superiority"),
    ("controls=[{treatment: a, baseline: b, standalone: true}]", r"controls\[0\].standalone: only hypotheses"),
    ("controls=[{name: H1, treatment: a, baseline: b}]", "the name 'H1' is used twice"),
    ("extension={alpha_first: 0.01}", r"extension.seeds: name the extension seeds"),
    ("extension={seeds: [5], alpha_first: 0.05, window: [0.01, 0.3], hypotheses: [H1]}",
     r"extension.alpha_first=0.05: give 0 < alpha_first < alpha \(0.05\)"),
    ("extension={seeds: [5], alpha_first: 0.01, window: [0.3, 0.01], hypotheses: [H1]}", r"extension.window=\[0.3, 0.01\]"),
    ("extension={seeds: [5], alpha_first: 0.01, window: [0.01, 0.3], hypotheses: [H9]}",
     r"extension.hypotheses\[0\]='H9': not a hypothesis name \(H1, H2, H5\)"),
    ("extension={seeds: [0,1,2,3], alpha_first: 0.01, window: [0.01, 0.3], hypotheses: [H1]}", "stage 1 .* at least 2 seeds"),
])
def test_confirmatory_errors_name_the_key(over, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(*FULL[:3], over)


# ---- the analysis, on hand values and fake seed folders (no training) ----

M = "world/world/exact_match"
Z = np.array([-1.2649110640673518, -0.6324555320336759, 0.0, 0.6324555320336759, 1.2649110640673518])  # mean 0, sd 1


def _diffs(p: float, n: int = 5, sd: float = 3.0) -> list[float]:
    """Per-seed gains (points, between-seed sd ``sd``) whose one-sided paired t p-value is exactly ``p``."""
    z = Z if n == 5 else np.concatenate([Z, Z])
    z = z / z.std(ddof=1)
    return list(sd * (st.t.isf(p, n - 1) / math.sqrt(n) + z))


def _vals(per_seed: dict[str, list[float]], n_ex: int = 4) -> dict:
    """{arm: {seed: cell}}: arm ``b`` at 0.5 in every seed, each other arm 0.5 + its gain (points) / 100."""
    seeds = range(len(next(iter(per_seed.values()))))
    out = {"b": {s: {"value": 0.5, "per_example": [1.0, 0.0] * (n_ex // 2), "path": ""} for s in seeds}}
    for arm, d in per_seed.items():
        out[arm] = {s: {"value": 0.5 + d[s] / 100, "per_example": [1.0, 1.0] * (n_ex // 2), "path": ""} for s in seeds}
    return out


def test_noninferiority_contrast_and_its_three_verdicts():
    cfg = ExperimentConfig()
    c = Contrast(name="H5", treatment="t", baseline="b", test="noninferiority", margin=1.0)
    d = [0.5, -0.3, 0.2, -0.8, 0.1]
    r = _contrast(c, _vals({"t": d}), list(range(5)), M, cfg)
    assert r["per_seed"] == pytest.approx(d) and r["kind"] == "noninferiority"
    assert r["p"] == r["p_one_sided"] == pytest.approx(st.ttest_1samp(np.array(d) + 1.0, 0, alternative="greater").pvalue)
    assert r["ci90"] == pytest.approx(list(st.t.interval(0.9, 4, loc=np.mean(d), scale=st.sem(d))))
    r["tested"] = True
    assert r["p"] < 0.05 and _verdict(r, 0.05) == "non-inferior (within -1)"
    worse = _contrast(c, _vals({"t": [x - 3.0 for x in d]}), list(range(5)), M, cfg)
    assert worse["ci90"][1] < -1.0 and _verdict(worse, 0.05) == "inferior by more than the margin"
    mid = _contrast(c, _vals({"t": [x - 1.0 for x in d]}), list(range(5)), M, cfg)
    assert _verdict(mid, 0.05).startswith("inconclusive (minimum detectable effect ")
    assert f"{mid['mde']:.3g} points at 80% power)" in _verdict(mid, 0.05)


def test_equivalence_verdict_flips_at_the_margin():
    cfg = ExperimentConfig()
    d = [0.4, -0.6, 1.1, -0.2, 0.3]
    lo, hi = st.t.interval(0.9, 4, loc=np.mean(d), scale=st.sem(d))
    edge = max(-lo, hi)
    got = {}
    for m in (edge - 0.01, edge + 0.01):
        r = _contrast(Contrast(treatment="t", baseline="b", test="equivalence", margin=m), _vals({"t": d}),
                      list(range(5)), M, cfg)
        assert r["p"] == pytest.approx(stats.tost(d, m)["p"]) == pytest.approx(r["p_one_sided"])
        got[m] = _verdict(r, 0.05)
    assert got == {edge - 0.01: "not shown equivalent", edge + 0.01: f"equivalent within +-{edge + 0.01:g}"}


def test_a_list_of_arms_is_their_per_example_mean():
    vals = {"a": {0: {"value": 0.5, "per_example": [1.0, 0.0, 1.0, 0.0]}, 1: {"value": 0.75, "per_example": [1.0, 1.0, 1.0, 0.0]}},
            "a@chat": {0: {"value": 0.25, "per_example": [0.0, 0.0, 1.0, 0.0]}, 1: {"value": 1.0, "per_example": [1.0] * 4}},
            "b": {0: {"value": 0.25, "per_example": [0.0, 1.0, 0.0, 0.0]}, 1: {"value": 0.5, "per_example": [0.0, 1.0, 1.0, 0.0]}}}
    side = _side(vals, ["a", "a@chat"], 0)
    assert side == {"value": 0.375, "per_example": [0.5, 0.0, 1.0, 0.0]}
    r = _contrast(Contrast(treatment=["a", "a@chat"], baseline="b"), vals, [0, 1], M, ExperimentConfig())
    assert r["per_seed"] == pytest.approx([12.5, 37.5]) and r["contrast"] == "mean(a, a@chat) - b"
    assert "ci_crossed_bootstrap" in r
    vals["a@chat"][1]["per_example"] = [1.0] * 3
    with pytest.raises(DataError, match=r"mean\(a, a@chat\), seed 1: the arms have \[3, 4\] per-example values"):
        _side(vals, ["a", "a@chat"], 1)


def test_superiority_verdicts_fixed_sequence_and_standalone():
    cfg = _cfg("seeds=[0,1,2,3,4]", "hypotheses=[{name: H1, treatment: t1, baseline: b, margin: 2.0},"
               " {name: H2, treatment: t2, baseline: b, margin: 2.0}, {name: H3, treatment: t3, baseline: b},"
               " {name: H5, treatment: t5, baseline: b, standalone: true}]")
    small = [0.3, -0.2, 0.1, -0.1, 0.2]
    values = {M: _vals({"t1": _diffs(0.001), "t2": small, "t3": _diffs(0.001), "t5": _diffs(0.02)})}
    rows = _hypotheses(cfg, values, list(range(5)), 0.05)
    assert rows["H1"]["verdict"] == "confirmed" and rows["H1"]["p_one_sided"] == pytest.approx(0.001)
    assert rows["H2"]["verdict"] == "refuted at practical size (90% interval within +-2)"
    assert not rows["H3"]["tested"] and rows["H3"]["verdict"] == "not tested (H2 was not rejected: fixed sequence)"
    assert rows["H5"]["family"] == "standalone" and rows["H5"]["tested"] and rows["H5"]["verdict"] == "confirmed"
    values = {M: _vals({"t1": _diffs(0.2), "t2": small, "t3": small, "t5": _diffs(0.02)})}
    rows = _hypotheses(cfg, values, list(range(5)), 0.01)  # stage 1's alpha: p = 0.02 no longer rejects
    assert rows["H1"]["verdict"].startswith("inconclusive (minimum detectable effect")
    assert rows["H5"]["verdict"].startswith("inconclusive") and rows["H5"]["alpha"] == 0.01
    worse = _contrast(Contrast(treatment="t1", baseline="b", margin=2.0), _vals({"t1": [-6.0, -5.0, -4.0, -5.5, -4.5]}),
                      list(range(5)), M, cfg)
    assert _verdict(worse, 0.05) == "refuted (the 90% interval lies on the other side of 0)"
    two = _contrast(Contrast(treatment="t1", baseline="b", alternative="two-sided"), _vals({"t1": [-6.0, -5.0, -4.0, -5.5, -4.5]}),
                    list(range(5)), M, cfg)
    assert _verdict(two, 0.05) == "confirmed (two-sided: the gain is negative)" and two["p_one_sided"] > 0.99


EXT = "extension={seeds: [5,6,7,8,9], alpha_first: 0.01, window: [0.01, 0.30], hypotheses: [H1, H2]}"
HYP = "hypotheses=[{name: H1, treatment: t1, baseline: b, margin: 2}, {name: H2, treatment: t2, baseline: b, margin: 2}]"


@pytest.mark.parametrize("p1,triggered", [(0.1, True), (0.005, False), (0.5, False)])
def test_extension_triggers_only_in_the_window(p1, triggered):
    cfg = _cfg("seeds=[0,1,2,3,4]" if triggered else "seeds=[0,1,2,3,4,5,6,7,8,9]", HYP, EXT)
    values = {M: _vals({"t1": _diffs(p1), "t2": _diffs(0.001)})}
    seeds, _, rows, ext = _staged(cfg, lambda s: values, "c.yaml")
    assert seeds == [0, 1, 2, 3, 4] and ext["triggered"] is triggered and ext["stage"] == 1
    assert ext["alpha_used"] == 0.01 and rows["H1"]["alpha"] == 0.01
    assert rows["H1"]["p_one_sided"] == pytest.approx(p1)
    if triggered:  # not run yet: the next command, and the verdicts say they are pending
        assert not ext["final"] and ext["next"] == "remit experiment --config c.yaml seeds=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
        assert rows["H1"]["verdict"].endswith("; pending: the extension is triggered")
        assert "H1: stage-1 one-sided p in [0.01, 0.3]" in ext["reason"]
    else:
        assert ext["final"] and not ext["next"] and "stage 1 is final" in ext["reason"]
        assert ext["reason"].endswith("; seeds 5, 6, 7, 8, 9 are listed but not used (not triggered)")
        # p = 0.005 < 0.01: H1 confirmed at stage 1, H2 tested; p = 0.5: H2 never tested
        assert rows["H1"]["verdict"] == ("confirmed" if p1 < 0.01 else "inconclusive (minimum detectable effect "
                                         f"{rows['H1']['mde']:.3g} points at 80% power)")
        assert rows["H1"]["mde"] > 6.0  # sd 3 over 5 seeds at alpha 0.01
        assert rows["H2"]["tested"] is (p1 < 0.01)


def test_extension_stage_two_tests_all_seeds_at_the_rest_of_alpha():
    cfg = _cfg("seeds=[0,1,2,3,4,5,6,7,8,9]", HYP, EXT)
    # stage 1 (seeds 0-4): H1 p = 0.1 (in the window); all ten seeds: p = 0.03 < 0.04
    ten = _diffs(0.03, 10)
    first = _diffs(0.1)
    values = {M: _vals({"t1": [*first, *ten[5:]], "t2": [5.0, 6.0, 7.0, 5.5, 6.5] * 2})}
    seeds, _, rows, ext = _staged(cfg, lambda s: {M: {a: {x: by[x] for x in s} for a, by in values[M].items()}}, "")
    assert ext["triggered"] and ext["stage"] == 2 and ext["alpha_used"] == pytest.approx(0.04) and ext["final"]
    assert seeds == list(range(10)) and len(rows["H1"]["per_seed"]) == 10 and rows["H1"]["alpha"] == pytest.approx(0.04)
    assert ext["stage1_hypotheses"]["H1"]["p_one_sided"] == pytest.approx(0.1)
    p10 = st.ttest_1samp([*first, *ten[5:]], 0, alternative="greater").pvalue
    assert rows["H1"]["p_one_sided"] == pytest.approx(p10)
    assert 0.01 < p10 < 0.04 and rows["H1"]["verdict"] == "confirmed" and rows["H2"]["tested"]


def _fake_seed(root: Path, seed: int, arms: dict[str, tuple[float, list[float]]]) -> None:
    """A finished seed as the run-folder reader sees it: a manifest naming each arm's world evaluation."""
    d = root / f"seed{seed}"
    evals = {}
    for label, (v, per) in arms.items():
        e = d / f"eval-{label}-world"
        e.mkdir(parents=True)
        (e / "results.json").write_text(json.dumps({
            "model": label, "suite": "world", "tasks": {"world": {"exact_match": {"value": v, "stderr": 0.0, "n": len(per)}}},
            "per_example": {"world": {"exact_match": per}}}))
        evals[label] = {"world": e.name}
    (d / "manifest.json").write_text(json.dumps({"name": f"seed{seed}", "stages": {}, "evals": evals}))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_summary_and_results_of_a_confirmatory_design(tmp_path):
    rng = np.random.default_rng(0)
    conf = tmp_path / "prereg.yaml"
    conf.write_text("name: conf\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "prereg.yaml")
    _git(tmp_path, "commit", "-qm", "prereg")
    commit = subprocess.run(["git", "log", "-1", "--format=%H"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    time.sleep(1.1)  # the commit time has one-second resolution
    gains = [6.0, 4.0, 8.0, 5.0, 7.0]
    for s in range(5):
        per = [float(x) for x in rng.integers(0, 2, 20)]
        _fake_seed(tmp_path / "runs" / "conf", s, {
            "vanilla": (0.5, per), "vanilla@chat": (0.3, per), "placebo": (0.5 + gains[s] / 1000, per),
            "remit": (0.5 + gains[s] / 100, per), "remit@chat": (0.3 + gains[s] / 100, per)})
    cfg = _cfg(f"runs_dir={tmp_path / 'runs'}", "name=conf", "seeds=[0,1,2,3,4]",
               "hypotheses=[{name: H1, treatment: [remit, remit@chat], baseline: [vanilla, vanilla@chat], margin: 2},"
               " {name: H5, treatment: remit, baseline: vanilla, test: noninferiority, margin: 1, standalone: true}]",
               "controls=[{name: placebo, treatment: placebo, baseline: vanilla, test: equivalence, margin: 2}]")
    out = analyze(cfg, command="remit experiment --config prereg.yaml", config_file=str(conf))
    s = json.loads((tmp_path / "runs" / "conf" / "summary.json").read_text())
    h1, h5, pl = s["hypotheses"]["H1"], s["hypotheses"]["H5"], s["controls"]["placebo"]
    assert h1["contrast"] == "mean(remit, remit@chat) - mean(vanilla, vanilla@chat)"
    assert h1["per_seed"] == pytest.approx(gains) and h1["mean"] == pytest.approx(6.0)
    assert h1["ci90"] == pytest.approx(list(st.t.interval(0.9, 4, loc=6.0, scale=st.sem(gains))))
    assert h1["p_one_sided"] == pytest.approx(st.ttest_1samp(gains, 0, alternative="greater").pvalue)
    assert (h1["tested"], h1["verdict"], h5["family"], h5["verdict"]) == (True, "confirmed", "standalone", "non-inferior (within -1)")
    assert pl["per_seed"] == pytest.approx([g / 10 for g in gains]) and pl["verdict"] == "equivalent within +-2"
    assert pl["family"] == "control" and pl["tested"] and pl["p_one_sided"] == pytest.approx(stats.tost(pl["per_seed"], 2)["p"])
    assert s["heldout_n"] == 20 and s["extension"] is None and s["command"] == "remit experiment --config prereg.yaml"
    assert s["prereg_commit"] == commit and s["prereg_precedes_results"] is True and not s["prereg_uncommitted_changes"]
    text = out.read_text()
    assert "| hypothesis | contrast | test | per seed | mean | 90% t CI | p (one-sided) | tested (alpha) | verdict |" in text
    assert "| H5 | remit - vanilla (points) | noninferiority (margin 1), standalone |" in text
    assert "## Controls" in text and "| placebo | placebo - vanilla (points) | equivalence (margin 2) |" in text
    assert f"Pre-registration: commit `{commit}` precedes the results" in text
    # results older than the pre-registration's commit: the check says so
    for f in (tmp_path / "runs" / "conf").glob("seed*/eval-*/results.json"):
        os.utime(f, (1e9, 1e9))
    conf.write_text("name: conf\nseeds: [0]\n")  # and an edit after the commit is flagged
    analyze(cfg, config_file=str(conf))
    s = json.loads((tmp_path / "runs" / "conf" / "summary.json").read_text())
    assert s["prereg_precedes_results"] is False and s["prereg_uncommitted_changes"] is True
    analyze(cfg, config_file=str(tmp_path / "runs" / "conf" / "summary.json"))  # a file git does not track
    s = json.loads((tmp_path / "runs" / "conf" / "summary.json").read_text())
    assert s["prereg_commit"] is None and s["prereg_precedes_results"] is None


def test_results_state_what_to_run_when_the_extension_is_triggered(tmp_path):
    for s, g in enumerate(_diffs(0.1)):
        _fake_seed(tmp_path / "conf", s, {"b": (0.5, [1.0, 0.0]), "t1": (0.5 + g / 100, [1.0, 1.0]),
                                          "t2": (0.5 + g / 100, [1.0, 1.0])})
    cfg = _cfg(f"runs_dir={tmp_path}", "name=conf", "seeds=[0,1,2,3,4]", HYP, EXT)
    text = analyze(cfg, config_file="configs/experiments/confirmatory.yaml").read_text()
    s = json.loads((tmp_path / "conf" / "summary.json").read_text())
    assert {k: s["extension"][k] for k in ("triggered", "stage", "alpha_used", "final")} == \
        {"triggered": True, "stage": 1, "alpha_used": 0.01, "final": False}
    assert ("triggered, not yet run (H1: stage-1 one-sided p in [0.01, 0.3] (H1 p = 0.1, H2 not tested)" in text and
            "run `remit experiment --config configs/experiments/confirmatory.yaml seeds=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]` "
            "next" in text)
    assert "## Pre-registered hypotheses (fixed sequence, alpha 0.01," in text


def test_the_config_file_comes_from_the_command_line():
    assert _config_file(["/venv/bin/remit", "experiment", "--config", "c.yaml", "seeds=[0]"]) == "c.yaml"
    assert _config_file(["/x/remit/cli.py", "--plugin", "m", "experiment", "--config=d.yaml"]) == "d.yaml"
    assert _config_file(["/venv/bin/remit", "flywheel", "--config", "c.yaml"]) == ""
    assert _config_file(["/venv/bin/pytest", "experiment", "--config", "c.yaml"]) == ""


def test_every_arm_of_a_list_and_of_a_control_must_exist(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    base = [f"runs_dir={tmp_path}", f"flywheel_config={repo / 'configs/flywheel/smoke.yaml'}", "analyze_only=true"]
    smoke = repo / "configs" / "experiments" / "smoke.yaml"
    with pytest.raises(ConfigError, match=r"hypotheses\[0\].treatment='kd' is not an arm.*remit-r1"):
        run(load_config(ExperimentConfig, smoke, [*base, "hypotheses=[{treatment: [remit-r1, kd], baseline: vanilla}]"]))
    with pytest.raises(ConfigError, match=r"controls\[0\].baseline='vanilla@chat' is not an arm"):
        run(load_config(ExperimentConfig, smoke, [*base, "controls=[{treatment: remit-r1, baseline: [vanilla, vanilla@chat]}]"]))


def test_a_stage_one_rejection_stands_at_stage_two():
    """H1 confirmed at stage 1 (p = 0.005), H2 in the window: stage 2 runs; H1 keeps its stage-1 verdict even if
    its ten-seed p is above 0.04, and H2 is tested behind it."""
    cfg = _cfg("seeds=[0,1,2,3,4,5,6,7,8,9]", HYP, EXT)
    h1 = [*_diffs(0.005), *[-10.0, -12.0, -8.0, -11.0, -9.0]]
    h2 = [*_diffs(0.1), *_diffs(0.1)]
    values = {M: _vals({"t1": h1, "t2": h2})}
    seeds, _, rows, ext = _staged(cfg, lambda s: {M: {a: {x: by[x] for x in s} for a, by in values[M].items()}}, "")
    assert ext["stage"] == 2 and ext["reason"].startswith("H2: stage-1 one-sided p in [0.01, 0.3]")
    assert rows["H1"]["p_one_sided"] > 0.5 and rows["H1"]["rejected"]  # ten seeds: far from significant
    assert rows["H1"]["verdict"] == "confirmed at stage 1 (seeds 0, 1, 2, 3, 4, alpha 0.01)"
    assert rows["H2"]["tested"] and rows["H2"]["alpha"] == pytest.approx(0.04)
    assert rows["H2"]["rejected"] is (rows["H2"]["p_one_sided"] < 0.04)


def test_a_run_if_hypothesis_waits_for_its_follow_up(tmp_path):
    """H4 (round 2) is trained by a follow-up only if H2 is confirmed: absent arms are "not run", never an error;
    once they exist it is tested in its place in the sequence."""
    gains = [3.0, 5.0, 4.0, 6.0, 2.0]
    per = [1.0, 0.0] * 5

    def seeds(name: str, sign: float, with_r2: bool) -> Path:
        for s in range(5):
            arms = {"vanilla": (0.5, per), "remit": (0.5 + sign * gains[s] / 100, per)}
            if with_r2:
                arms["remit-r2"] = (0.51 + sign * gains[s] / 100, per)
            _fake_seed(tmp_path / name / "conf", s, arms)
        return tmp_path / name

    hyp = ("hypotheses=[{name: H1, treatment: remit, baseline: vanilla},"
           " {name: H4, treatment: remit-r2, baseline: remit, run_if: H1}]")
    for root, verdict in ((seeds("due", 1.0, False), "not run yet: H1 was confirmed"),
                          (seeds("skip", -1.0, False), "not run (H1 was not confirmed")):
        out = analyze(_cfg(f"runs_dir={root}", "name=conf", "seeds=[0,1,2,3,4]", hyp))
        h4 = json.loads((root / "conf" / "summary.json").read_text())["hypotheses"]["H4"]
        assert h4["tested"] is False and h4["p_one_sided"] is None and h4["verdict"].startswith(verdict), h4
        assert "| H4 | remit-r2 - remit |" in out.read_text()
    root = seeds("ran", 1.0, True)
    analyze(_cfg(f"runs_dir={root}", "name=conf", "seeds=[0,1,2,3,4]", hyp))
    h4 = json.loads((root / "conf" / "summary.json").read_text())["hypotheses"]["H4"]
    assert h4["tested"] and h4["per_seed"] == pytest.approx([1.0] * 5)


def test_run_if_must_name_an_earlier_hypothesis():
    with pytest.raises(ConfigError, match=r"hypotheses\[0\]\.run_if='H2': name an earlier hypothesis"):
        _cfg("hypotheses=[{name: H1, treatment: a, baseline: b, run_if: H2}, {name: H2, treatment: a, baseline: c}]")
    with pytest.raises(ConfigError, match=r"controls\[0\]\.run_if"):
        _cfg("controls=[{name: c, treatment: a, baseline: b, run_if: H1}]", "hypotheses=[{name: H1, treatment: a, baseline: b}]")
