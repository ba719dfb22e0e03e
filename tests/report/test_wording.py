"""The report says what it measured, the right way round: words checked against synthetic numbers of known sign.

Every verdict sentence and table cell built here comes from results whose direction and significance
are known by construction (large effects over many examples, or none at all).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from remit.report import sections, tables

CFG = SimpleNamespace(n_boot=2000, seed=0, confidence=0.95)


def _res(metric: str, values: np.ndarray, task: str = "t") -> dict:
    return {"tasks": {task: {metric: {"value": float(values.mean()), "stderr": float(values.std() / len(values) ** .5),
                                      "n": len(values)}}},
            "per_example": {task: {metric: [float(v) for v in values]}}}


def _run(tmp_path: Path, remit: dict, vanilla: dict):
    evals = {}
    for label, res in (("remit", remit), ("vanilla", vanilla)):
        d = tmp_path / f"eval-{label}"
        d.mkdir()
        (d / "results.json").write_text(json.dumps(res))
        evals[label] = d
    return SimpleNamespace(evals=evals, verdicts=[["remit", "vanilla"]], baselines={"remit": "vanilla"})


def _case(tmp_path, metric: str, shift: float, n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    if metric == "exact_match":
        base = (rng.random(n) < 0.4).astype(float)
        mine = (rng.random(n) < 0.4 + shift).astype(float)
    else:
        base = rng.normal(1.2, 0.05, n)
        mine = base + shift + rng.normal(0, 0.01, n)
    run = _run(tmp_path, _res(metric, mine), _res(metric, base))
    blocks, numbers = sections.verdict_section(run, CFG, tmp_path)
    table, tnum = sections.results_section(run, CFG, tmp_path)
    text = blocks[0][1].strip("*")
    header, rows = table[0][1], table[0][2]
    return text, numbers["remit vs vanilla"], dict(zip(header, rows[0])), tnum["remit"]


def test_accuracy_significantly_higher_is_a_yes(tmp_path):
    text, num, row, _ = _case(tmp_path, "exact_match", +0.3)
    assert text.startswith("By accuracy: Yes, remit beat vanilla in this run, significantly.")
    assert num["beat"] and num["significant"] and num["gain"] > 0
    assert row["t (exact_match)"].endswith("*)") and "(+" in row["t (exact_match)"]
    assert re.fullmatch(r"accuracy \+\d+\.\d+ \[\+\d+\.\d+, \+\d+\.\d+\]\*", row["avg gain [CI] (+ = better)"])


def test_lower_bpb_reads_as_an_improvement(tmp_path):
    text, num, row, tnum = _case(tmp_path, "bpb", -0.02)
    assert text.startswith("By bits per byte on gold solutions: Yes, remit beat vanilla in this run, significantly.")
    assert re.search(r"average gain \+0\.0(19|20|21)\d \(bpb: lower is better; remit's is 0\.0(19|20|21)\d lower on "
                     r"average\)", text), text
    cell = row["t (bpb, lower is better)"]
    assert re.fullmatch(r"1\.1\d+ \(-0\.02\d+ \[-0\.02\d+, -0\.01\d+\]\*\)", cell), cell  # lower, and marked
    assert re.fullmatch(r"bpb \+0\.0\d+ \[\+0\.0\d+, \+0\.0\d+\]\*", row["avg gain [CI] (+ = better)"])
    assert tnum["deltas"]["t (bpb)"]["delta"] < 0 and num["beat"] and num["significant"]


def test_higher_bpb_is_a_significant_no(tmp_path):
    text, num, row, _ = _case(tmp_path, "bpb", +0.02)
    assert text.startswith("By bits per byte on gold solutions: No, remit did not beat vanilla in this run: it is "
                           "significantly behind.")
    assert re.search(r"average gain -0\.0(19|20|21)\d \(bpb: lower is better; remit's is 0\.0(19|20|21)\d higher on "
                     r"average\)", text), text
    assert "not significant" not in text
    assert re.fullmatch(r"bpb -0\.0\d+ \[-0\.0\d+, -0\.0\d+\]\*", row["avg gain [CI] (+ = better)"])
    assert not num["beat"] and num["significant"]


def test_no_effect_is_not_significant(tmp_path):
    text, num, row, _ = _case(tmp_path, "bpb", 0.0)
    assert "not significant" in text.lower() or text.startswith("By bits per byte on gold solutions: Not significantly")
    assert not num["significant"] and not row["avg gain [CI] (+ = better)"].endswith("*")
    assert not row["t (bpb, lower is better)"].endswith("*)")


def _claims(text: str) -> tuple[bool | None, bool | None]:
    """(beat?, significant?) as the sentence states them."""
    if text.startswith("Yes,"):
        return True, True
    if text.startswith("Not significantly:"):
        return None, False
    if "significantly behind" in text:
        return False, True
    if "(the difference is not significant)" in text:
        return False, False
    return None, None


@pytest.mark.parametrize("lower", [False, True])
def test_every_verdict_agrees_with_its_numbers_and_table_cell(lower):
    """Near the significance boundary too: one task's verdict and its starred cell use the same interval."""
    metric = "bpb" if lower else "acc"
    checked = 0
    for i in range(120):
        d0 = (-1) ** i * (0.5 + i * 0.025)  # in units of the standard error: both sides of +-1.96
        se = 0.01
        res = {"tasks": {"t": {metric: {"value": 0.5 + d0 * se, "stderr": se / math.sqrt(2)}}}}
        base = {"tasks": {"t": {metric: {"value": 0.5, "stderr": se / math.sqrt(2)}}}}
        d = tables.compare_task(res, base, "t", seed=i)
        avg = tables.average_gain([d])
        text = tables.verdict("remit", "vanilla", avg, [d])
        beat, sig = _claims(text)
        assert sig == d.significant == (avg["lo"] > 0 or avg["hi"] < 0), (d0, text)
        gain = -d.delta if lower else d.delta
        assert math.isclose(avg["gain"], gain)
        if beat is not None:
            assert beat == (gain > 0), text
        assert (sig and gain > 0) == text.startswith("Yes,")
        assert not (sig and ("not significant" in text.lower())), text
        shown = float(re.search(r"average gain ([+-]\d+\.\d+)", text).group(1))
        assert math.copysign(1, shown) == math.copysign(1, gain)
        checked += 1
    assert checked == 120


def test_without_an_interval_significance_is_not_claimed():
    res = {"tasks": {"t": {"acc": {"value": 0.7}}}}
    base = {"tasks": {"t": {"acc": {"value": 0.5}}}}
    d = tables.compare_task(res, base, "t")
    text = tables.verdict("remit", "vanilla", tables.average_gain([d]), [d])
    assert text.startswith("Unknown significance: remit is ahead of vanilla, without a confidence interval.")
    assert "interval includes 0" not in text
