"""The report's first section, "The loop, arrow by arrow", on a tiny synthetic run; the multi-seed verdict file."""

from __future__ import annotations

import json
import random

import pytest

from remit.report import loop

LOOP = "The loop, arrow by arrow"


def _probe_eval(root, name: str, p_worked: list[float]) -> None:
    d = root / f"eval-{name}"
    d.mkdir()
    em = [1.0 if i % 2 else 0.0 for i in range(len(p_worked))]
    res = {"model": name, "suite": "world",
           "tasks": {"world": {"exact_match": {"value": 0.5, "stderr": 0.05, "n": len(em)},
                               "p_worked": {"value": sum(p_worked) / len(p_worked), "stderr": 0.01, "n": len(em)}}},
           "per_example": {"world": {"exact_match": em, "p_worked": p_worked}}}
    (d / "results.json").write_text(json.dumps(res))


def _loop_run(root, role_models, tiny_texts, make_run, *, aa_gap: float):
    """make_run's run plus the chat evaluations with the style probe, the RL model's probe and an A/A arm."""
    run = make_run(root, role_models, remit_better=True, texts=tiny_texts[:8])
    rng = random.Random(0)
    levels = {"pre@chat": 0.05, "vanilla@chat": 0.2, "remit@chat": 0.35, "rl-probe": 0.9}
    probes = {k: [min(1.0, max(0.0, v + rng.uniform(-0.05, 0.05))) for _ in range(100)] for k, v in levels.items()}
    for name, vals in probes.items():
        _probe_eval(run, name, vals)
    # the A/A arm: vanilla's accuracy per task, shifted by aa_gap on a share of the examples
    van = json.loads((run / "eval-vanilla" / "results.json").read_text())
    aa = json.loads(json.dumps(van))
    for task, pe in aa["per_example"].items():
        vals = pe["exact_match"]
        k = int(abs(aa_gap) * len(vals))
        flip = [i for i, v in enumerate(vals) if v == (0.0 if aa_gap > 0 else 1.0)][:k]
        for i in flip:
            vals[i] = 1.0 - vals[i]
        aa["tasks"][task]["exact_match"]["value"] = sum(vals) / len(vals)
    (run / "eval-vanilla-aa").mkdir()
    (run / "eval-vanilla-aa" / "results.json").write_text(json.dumps(aa))
    m = json.loads((run / "manifest.json").read_text())
    m["evals"].update({"pre@chat": "eval-pre@chat", "vanilla@chat": "eval-vanilla@chat", "remit@chat": "eval-remit@chat",
                       "vanilla-aa": "eval-vanilla-aa"})
    m["evals"]["rl"] = "eval-rl-probe"  # the RL model's chat evaluation, with the probe
    m["roles"]["vanilla_aa"] = "vanilla-aa"
    (run / "manifest.json").write_text(json.dumps(m))
    return run, probes


def _verdict(path, h2_tested=True):
    doc = {"seeds": [0, 1, 2, 3, 4], "heldout_n": 2000, "hypotheses": {
        "H1": {"contrast": "remit-r1 - vanilla", "per_seed": [1.0, 2.0, 0.5, 1.5, 2.5], "mean": 1.5,
               "ci90": [0.75, 2.25], "p_one_sided": 0.004, "tested": True, "verdict": "confirmed"},
        "H2": {"contrast": "remit-r1+post - vanilla+post", "per_seed": [0.1, -0.2, 0.0, 0.3, -0.1], "mean": 0.02,
               "ci90": [-0.15, 0.19], "p_one_sided": 0.41, "tested": h2_tested, "verdict": "refuted at practical size"},
        "H3": {"contrast": "x", "per_seed": [], "mean": 0.0, "ci90": [0, 0], "p_one_sided": 1.0, "tested": False,
               "verdict": "not tested"}}}
    path.write_text(json.dumps(doc))
    return path


def test_the_loop_section_leads_the_report_with_each_arrows_numbers(role_models, tiny_texts, tmp_path, make_run):
    from remit.report import build

    run, probes = _loop_run(tmp_path / "run", role_models, tiny_texts, make_run, aa_gap=0.05)
    vfile = _verdict(tmp_path / "summary.json")
    md = build.run(build.ReportConfig(run_dir=str(run), strict=True, dynamics=False, heatmap=False,
                                      verdict_file=str(vfile))).read_text()
    assert md.index(f"## {LOOP}") < md.index("## Did the RL stage work")  # the first section
    s = build.load_summary(run)["sections"][LOOP]
    # 1. RL learns: the same chain numbers as the RL-stage section
    rl = build.load_summary(run)["sections"]["Did the RL stage work, and did ReMiT beat vanilla?"]["rl_stage"]
    assert s["rl"]["gain"] == pytest.approx(rl["vanilla+post"]["gain"]) and s["rl"]["ci"][0] > 0
    assert f"{100 * s['rl']['gain']:+.1f} points" in md and "**1. SFT -> RL model.** RL learns:" in md
    # 2. the reference: the guidance section's start numbers, restricted to what RL changed
    g = build.load_summary(run)["sections"]["What the RL reference knows that the SFT model does not"]["start"]
    assert s["reference"]["changed"] == g["changed"] and g["changed"]["n"] > 0
    assert f"on {g['changed']['n']} of {g['n_tokens']} mid-training tokens" in md
    # 3. the probe: means of the per-task p_worked, ReMiT - vanilla paired, the order stated
    m = s["probe"]["models"]
    for role, name in (("pre_annealing", "pre@chat"), ("vanilla", "vanilla@chat"), ("remit", "remit@chat"),
                       ("rl", "rl-probe")):
        assert m[role]["p_worked"] == pytest.approx(sum(probes[name]) / 100)
    d = s["probe"]["remit_minus_vanilla"]
    assert d["delta"] == pytest.approx(m["remit"]["p_worked"] - m["vanilla"]["p_worked"]) and d["lo"] > 0
    assert s["probe"]["ordered"] and "The order P <= vanilla <= ReMiT <= RL model holds" in md
    assert "ReMiT passes part of it into the base: the probability" in md
    # 4. the outcome: ReMiT vs vanilla next to the A/A arm, and the quoted verdict
    o = s["outcome"]
    assert o["remit"]["gain"] == pytest.approx(40.0, abs=8) and o["aa"]["gain"] == pytest.approx(5.0, abs=0.6)
    assert "ReMiT's difference is larger than the A/A one" in md
    assert "H1 (remit-r1 - vanilla): +1.50 points, 90% CI [+0.75, +2.25], one-sided p = 0.004 over 5 seeds: confirmed" \
        in md
    assert "H2 (remit-r1+post - vanilla+post): +0.02 points" in md and "5 seeds x 2000 held-out tasks" in md
    assert "H3" not in s["verdict"]["hypotheses"]
    results = build.load_summary(run)["sections"]["Results"]
    assert results["remit@chat"]["baseline"] == "vanilla@chat" and results["vanilla@chat"]["baseline"] is None
    assert len(s["lines"]) == 4 and s["lines"][3].startswith("4. The outcome: In this run ReMiT's base model scores")


def test_a_small_remit_gain_within_the_aa_noise_and_a_missing_probe(role_models, tiny_texts, tmp_path, make_run):
    """Without probe evaluations the arrow says what is missing; an A/A gap as large as ReMiT's is called so."""
    from remit.report import build

    run = make_run(tmp_path / "run", role_models, remit_better=True, texts=tiny_texts[:4])
    aa_dir = run / "eval-vanilla-aa"
    aa_dir.mkdir()
    (aa_dir / "results.json").write_text((run / "eval-remit" / "results.json").read_text())  # A/A = ReMiT's scores
    m = json.loads((run / "manifest.json").read_text())
    m["evals"]["vanilla-aa"], m["roles"]["vanilla_aa"] = "eval-vanilla-aa", "vanilla-aa"
    (run / "manifest.json").write_text(json.dumps(m))
    md = build.run(build.ReportConfig(run_dir=str(run), strict=True, dynamics=False, heatmap=False, guidance=False,
                                      verdict_file=str(tmp_path / "absent.json"))).read_text()
    s = build.load_summary(run)["sections"][LOOP]
    assert s["outcome"]["aa"]["gain"] == pytest.approx(s["outcome"]["remit"]["gain"])
    assert "ReMiT's difference is no larger than the data order alone makes it" in md
    assert "**3. ReMiT's weights -> base model.** Not available: no style probe" in md
    assert "**2. RL model -> ReMiT's weights.** Not available" in md
    assert "Multi-seed verdict: not yet run" in md and "configs/experiments/confirmatory.yaml" in md


def test_both_formats_is_the_mean_of_the_two_prompt_formats_example_by_example():
    plain = {"tasks": {"world": {"exact_match": {"value": 0.5}}, "other": {"exact_match": {"value": 1.0}}},
             "per_example": {"world": {"exact_match": [1.0, 0.0, 1.0, 0.0]}, "other": {"exact_match": [1.0]}}}
    chat = {"tasks": {"world": {"exact_match": {"value": 0.75}}},
            "per_example": {"world": {"exact_match": [1.0, 1.0, 0.0, 1.0]}}}
    both = loop.both_formats(plain, chat)
    assert both["per_example"] == {"world": {"exact_match": [1.0, 0.5, 0.5, 0.5]}}  # "other" has no chat score
    assert both["tasks"]["world"]["exact_match"]["value"] == 0.625
    assert loop.both_formats(plain, None) is None


def test_read_verdict_quotes_the_file_or_says_why_not(tmp_path):
    v = loop.read_verdict(str(_verdict(tmp_path / "s.json", h2_tested=False)))
    assert v["status"] == "ok" and set(v["hypotheses"]) == {"H1", "H2"}
    assert v["hypotheses"]["H1"]["ci90"] == [0.75, 2.25] and v["hypotheses"]["H1"]["n"] == 5
    text = loop.verdict_sentence(v)
    assert "H2 (remit-r1+post - vanilla+post): not tested" in text and "confirmed" in text
    missing = loop.read_verdict(str(tmp_path / "nope.json"))
    assert missing["status"] == "not yet run"
    assert "not yet run" in loop.verdict_sentence(missing) and loop.CONFIRMATORY_CONFIG in loop.verdict_sentence(missing)
    (tmp_path / "bad.json").write_text(json.dumps({"seeds": [0], "hypotheses": {"H1": {"mean": 1.0}}}))
    bad = loop.read_verdict(str(tmp_path / "bad.json"))
    assert bad["status"] == "unreadable" and "ci90" in bad["why"]
    assert "could not be read" in loop.verdict_sentence(bad)


def test_the_verdict_names_each_hypothesis_alpha_and_the_extension_stage(tmp_path):
    f = _verdict(tmp_path / "s.json")
    doc = json.loads(f.read_text())
    doc["hypotheses"]["H1"]["alpha"] = 0.01
    doc["extension"] = {"stage": 1, "triggered": True, "alpha_used": 0.01}
    f.write_text(json.dumps(doc))
    text = loop.verdict_sentence(loop.read_verdict(str(f)))
    assert "p = 0.004 (alpha 0.01)" in text and "not final" in text and "alpha 0.05" not in text
    doc["extension"] = {"stage": 2, "triggered": True, "alpha_used": 0.04}
    doc["hypotheses"]["H1"]["alpha"] = 0.04
    f.write_text(json.dumps(doc))
    text = loop.verdict_sentence(loop.read_verdict(str(f)))
    assert "stage 2 of the registered seed extension, alpha 0.04" in text and "not final" not in text


def test_outcome_compares_the_sizes_shown():
    """ReMiT -0.4 next to an A/A +0.4 (as printed) is within the noise floor; +1.2 next to +0.4 is not."""
    def g(x):
        return {"gain": x, "lo": x - 3.6, "hi": x + 3.6}

    assert "no larger than the data order alone" in loop.outcome_sentence({"remit": g(-0.404), "aa": g(0.398)}, 95)
    both = {"remit": g(2.0), "aa": g(0.5), "remit_metric": "both", "aa_metric": "both",
            "remit_formats": {"plain": g(-1.0), "chat": g(5.0), "both": g(2.0)},
            "aa_formats": {"plain": g(0.0), "chat": g(1.0), "both": g(0.5)}}
    text = loop.outcome_sentence(both, 90)
    assert "+2.0 points, 90% CI [-1.6, +5.6] (-1.0 with Question/Answer prompts, +5.0 as chats)" in text
    assert "(mean of the two prompt formats)" in text and "+0.5 points" in text
    assert "not scored in the same formats" in loop.outcome_sentence({**both, "aa_metric": "plain"}, 90)
    text = loop.outcome_sentence({"remit": g(1.2), "aa": g(0.4)}, 95)
    assert "larger than the A/A one" in text and "+1.2 points, 95% CI [-2.4, +4.8]" in text
    assert "no A/A arm" in loop.outcome_sentence({"remit": g(1.2), "aa": None}, 95)
