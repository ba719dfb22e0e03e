"""benchmarks/quality/reproduce.py: a rerun within the stated seed variation passes, one outside it fails."""

import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "quality"))

from reproduce import compare  # noqa: E402


def _results(mean: float, std: float, delta: float, ci: tuple[float, float]) -> dict:
    cell = {"mean": mean, "std": std, "per_seed": [mean - std, mean, mean + std]}
    return {"tables": {"base": {"vanilla": {"seeds": [0, 1, 2], "bpb": dict(cell)},
                                "remit": {"seeds": [0, 1, 2], "bpb": dict(cell, delta=delta, ci=list(ci))}},
                       "post": {}}}


def test_identical_runs_reproduce():
    a = _results(3.0, 0.01, -0.02, (-0.03, -0.01))
    r = compare(a, copy.deepcopy(a))
    assert r["ok"] and r["cells"] == 3 and r["identical"] == 3 and r["worst_ratio"] == 0.0


def test_within_seed_std_reproduces_outside_does_not():
    a = _results(3.0, 0.01, -0.02, (-0.03, -0.01))
    assert compare(a, _results(3.008, 0.01, -0.015, (-0.025, -0.005)))["ok"]
    r = compare(a, _results(3.05, 0.01, -0.02, (-0.03, -0.01)))
    assert not r["ok"]
    assert {c["cell"] for c in r["not_reproduced"]} == {"base/vanilla/bpb/mean", "base/remit/bpb/mean"}
    r = compare(a, _results(3.0, 0.01, +0.02, (+0.01, +0.03)))  # the delta flipped sign: outside its CI
    assert [c["cell"] for c in r["not_reproduced"]] == ["base/remit/bpb/delta"]


def test_a_model_missing_from_one_run_fails():
    a = _results(3.0, 0.01, -0.02, (-0.03, -0.01))
    b = copy.deepcopy(a)
    del b["tables"]["base"]["remit"]
    r = compare(a, b)
    assert not r["ok"] and r["missing"] == ["base/remit"]
