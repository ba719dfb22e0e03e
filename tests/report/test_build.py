"""remit report: builds from a synthetic run folder; the verdict follows the numbers; missing pieces are tolerated."""

from __future__ import annotations

import json
import re

import pytest

HEAD = "Did the RL stage work, and did ReMiT beat vanilla?"


def _build(run_dir, **kw):
    from remit.report import build

    md = build.run(build.ReportConfig(run_dir=str(run_dir), **kw))
    return md.read_text(), (run_dir / "report.html").read_text(), build.load_summary(run_dir)


def test_full_report(role_models, tiny_texts, tmp_path, make_run):
    run = make_run(tmp_path / "run", role_models, remit_better=True, texts=tiny_texts[:20])
    md, page, summary = _build(run, strict=True, sample_texts=1, probe_texts=4)
    assert "**By accuracy: Yes, remit beat vanilla in this run, significantly." in md
    v = summary["sections"][HEAD]["verdict"]["remit vs vanilla"]
    assert v["beat"] and v["significant"] and v["gain"] == pytest.approx(40.0, abs=8) and v["lo"] > 0
    # remit_rl is compared with rl; its model dir is missing but its eval exists
    assert "remit_rl vs rl" in summary["sections"][HEAD]["verdict"]
    results = summary["sections"]["Results"]
    assert results["remit_rl"]["baseline"] == "rl" and results["remit"]["baseline"] == "vanilla"
    for png in ("training_curves", "weights_over_training", "weights_heatmap", "shift", "stage_costs"):
        assert (run / "report" / f"{png}.png").stat().st_size > 5000
        assert f"report/{png}.png" in md
    n_img = len(re.findall(r"<img src='data:image/png;base64,", page))
    assert n_img == 4  # every figure inlined (the heat-map is inlined as HTML, not as its PNG)
    assert "class='tok'" in page and "report/" not in re.sub(r"`report/[^`]*`|<code>report/[^<]*</code>", "", page)
    dyn = summary["sections"]["Training dynamics: distance to the RL model"]
    rows = {r["label"].split(" ")[0]: r for r in dyn["models"]}
    assert rows["rl"]["kl_to_target"] == 0.0 and rows["vanilla"]["kl_to_target"] > 0
    assert rows["pre"]["kl_from_origin"] == 0.0
    costs = summary["sections"]["Cost per stage"]
    assert costs["total_wall_s"] == 76.0 and costs["stages"][1]["tokens_per_s"] == pytest.approx(10240 / 20)
    assert "Not available" not in md.split("## Results")[0].split("## Did the RL stage")[1]
    rl = summary["sections"][HEAD]["rl_stage"]["vanilla+post"]
    assert rl["sft"] == pytest.approx(rl["rl"] - rl["gain"]) and rl["gain"] > 0.2 and rl["ci"][0] > 0
    assert "**The RL stage raised the held-out reward from" in md and "significant." in md
    guide = summary["sections"]["What the RL reference knows that the SFT model does not"]
    for when in ("start", "end"):
        g = guide[when]
        assert g["n_tokens"] > 50 and -1 <= g["corr_weight"] <= 1 and (run / "report" / f"guidance_{when}.png").is_file()
    assert guide["start"]["model"] == "pre" and guide["end"]["model"] == "vanilla"


def test_verdict_flips_with_the_numbers(role_models, tiny_texts, tmp_path, make_run):
    run = make_run(tmp_path / "run", role_models, remit_better=False, texts=tiny_texts[:5])
    md, _, summary = _build(run, dynamics=False, heatmap=False)
    assert "**By accuracy: No, remit did not beat vanilla in this run: it is significantly behind." in md
    v = summary["sections"][HEAD]["verdict"]["remit vs vanilla"]
    assert not v["beat"] and v["significant"] and v["hi"] < 0


def test_missing_pieces_are_reported(role_models, tmp_path):
    run = tmp_path / "partial"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({
        "name": "partial", "stages": {"midtrain-vanilla": {"path": "nowhere", "kind": "midtrain"}},
        "models": {"vanilla": "missing"}, "evals": {"vanilla": "missing-eval", "remit": "missing-eval-2"},
        "roles": {"vanilla": "vanilla", "remit": "remit", "rl": "rl"}}))
    md, page, summary = _build(run)
    assert "Not available for remit vs vanilla: no eval results for remit, vanilla." in md
    assert md.count("Not available") >= 5 and "<html>" in page
    assert summary["sections"]["Cost per stage"]["stages"][0]["wall_s"] is None
    empty = tmp_path / "empty"
    empty.mkdir()
    md, _, _ = _build(empty)  # no manifest at all
    assert "manifest.json not found" in md


def test_flywheel_manifest_roles_are_inferred(role_models, tmp_path):
    """The lead's manifest: no roles, evals nested by suite, post-trained labels with '+post'."""
    from remit.report import build

    run = tmp_path / "fw"
    for d in ("pretrain", "midtrain-vanilla", "midtrain-remit-r1", "post-vanilla", "post-remit-r1"):
        (run / d).mkdir(parents=True)
    (run / "post-vanilla" / "manifest.json").write_text(json.dumps({"inputs": {"model": str(run / "midtrain-vanilla")}}))
    st = {"pretrain": {"path": "runs/fw/pretrain", "kind": "pretrain", "label": "pre-annealing"},
          "midtrain-vanilla": {"path": "runs/fw/midtrain-vanilla", "kind": "midtrain", "label": "vanilla",
                               "method": "ntp", "round": 0},
          "post-vanilla": {"path": "runs/fw/post-vanilla", "kind": "posttrain", "label": "vanilla+post", "round": 0},
          "midtrain-remit-r1": {"path": "runs/fw/midtrain-remit-r1", "kind": "midtrain", "label": "remit-r1",
                                "method": "remit", "round": 1, "reference": "runs/fw/post-vanilla/grpo"},
          "post-remit-r1": {"path": "runs/fw/post-remit-r1", "kind": "posttrain", "label": "remit-r1+post", "round": 1}}
    models = {"pre-annealing": "runs/fw/pretrain", "vanilla": "runs/fw/midtrain-vanilla",
              "vanilla+post": "runs/fw/post-vanilla/grpo", "remit-r1": "runs/fw/midtrain-remit-r1",
              "remit-r1+post": "runs/fw/post-remit-r1/grpo"}
    (run / "manifest.json").write_text(json.dumps({
        "name": "fw", "stages": st, "models": models,
        "evals": {"vanilla": {"world": "eval-vanilla-world"}, "remit-r1": {"world": "eval-remit-r1-world"}},
        "posttrain": {"vanilla+post": {"sft": {"out": "runs/fw/post-vanilla/sft"}}}}))
    r = build.load_run(run)
    assert r.roles == {"pre_annealing": "pre-annealing", "vanilla": "vanilla", "reference": "vanilla+post",
                       "remit": "remit-r1", "rl": "vanilla+post", "sft": "vanilla+sft", "remit_rl": "remit-r1+post"}
    assert r.verdicts == [["remit-r1", "vanilla"], ["remit-r1+post", "vanilla+post"]]
    assert r.models["vanilla"] == run / "midtrain-vanilla"  # cwd-relative paths resolved into the run folder
    assert r.baselines["remit-r1+post"] == "vanilla+post"


def test_normal_approximation_closed_forms():
    from remit.report.tables import average_gain, compare_task

    res = {"tasks": {"t": {"bpb": {"value": 1.0, "stderr": 0.1}}}}
    base = {"tasks": {"t": {"bpb": {"value": 1.5, "stderr": 0.1}}}}
    dt = compare_task(res, base, "t")  # lower is better: a lower bpb is a gain; normal approximation
    assert dt.delta == pytest.approx(-0.5) and not dt.paired
    assert dt.hi - dt.lo == pytest.approx(2 * 1.959964 * 2 ** 0.5 * 0.1, rel=1e-4)
    assert average_gain([dt])["gain"] == pytest.approx(0.5)


def test_metric_families_are_judged_separately():
    from remit.report.sections import by_family

    res = {"tasks": {"gsm8k": {"exact_match": {"value": 0.0}, "bpb": {"value": 2.5}, "token_loss": {"value": 1.0}},
                     "arc_easy": {"acc": {"value": 0.25}, "acc_norm": {"value": 0.3}, "margin": {"value": -1.2}}},
           "per_example": {"gsm8k": {"exact_match": [0, 0], "bpb": [2.4, 2.6]}, "arc_easy": {"margin": [-1, -1.4]}}}
    fam = by_family(res)
    assert fam["accuracy"]["tasks"] == {"gsm8k": {"exact_match": {"value": 0.0}},
                                        "arc_easy": {"acc_norm": {"value": 0.3}}}
    assert fam["bpb"]["tasks"] == {"gsm8k": {"bpb": {"value": 2.5}}}
    assert fam["bpb"]["per_example"] == {"gsm8k": {"bpb": [2.4, 2.6]}}
    assert fam["margin"]["tasks"] == {"arc_easy": {"margin": {"value": -1.2}}}
    assert "token_loss" not in str(fam)
