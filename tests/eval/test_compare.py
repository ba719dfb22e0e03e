"""remit compare: paired bootstrap CIs cover the true delta, significance flags, real result files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from remit.eval.compare import compare, to_markdown
from remit.eval.results import summarize


def _write(path, per_example: dict[str, dict[str, list[float]]]):
    path.mkdir(parents=True)
    tasks = {t: {m: summarize(v) for m, v in ms.items()} for t, ms in per_example.items()}
    (path / "results.json").write_text(json.dumps({"model": path.name, "suite": "x", "tasks": tasks,
                                                   "per_example": per_example}))
    return path


@pytest.fixture
def constructed(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    noise = rng.normal(0, 0.5, 400)
    noise -= noise.mean()  # the sample delta is then exactly the constructed one
    return [_write(tmp_path / name, {"t": {"score": list(v)}}) for name, v in
            (("a", a), ("b_up", a + 0.3 + noise), ("b_same", a + noise))]


def test_ci_contains_true_delta_and_flags_significance(constructed):
    cmp = compare(constructed, n_boot=2000, seed=1)
    (row,) = cmp["rows"]
    assert row["task"] == "t" and row["metric"] == "score" and row["n"] == [400, 400, 400]
    assert row["deltas"][0] is None and row["ci"][0] is None
    assert row["deltas"][1] == pytest.approx(0.3, abs=1e-9)
    lo, hi = row["ci"][1]
    assert lo < 0.3 < hi and lo > 0  # covers the truth, excludes 0
    assert row["significant"][1] is True
    lo, hi = row["ci"][2]
    assert lo < 0 < hi and row["significant"][2] is False
    assert row["deltas"][2] == pytest.approx(0.0, abs=1e-9)
    # half-width ~ 1.96 * 0.5 / sqrt(400) = 0.049
    assert 0.03 < (hi - lo) / 2 < 0.07


def test_compare_real_world_runs(world_runs):
    cmp = compare([world_runs["random"], world_runs["trained"]], n_boot=1000)
    rows = {(r["task"], r["metric"]): r for r in cmp["rows"]}
    bpb = rows[("world", "bpb")]
    assert bpb["lower_is_better"] and bpb["deltas"][1] < 0 and bpb["significant"][1]
    assert bpb["ci"][1][1] < 0
    text = to_markdown(cmp)
    assert "| world | bpb (lower better) |" in text and " *" in text


def test_compare_cli(constructed, capsys, tmp_path):
    from remit.cli import main

    assert main(["compare", str(constructed[0]), str(constructed[1]), f"out={tmp_path / 'cmp'}"]) == 0
    out = capsys.readouterr().out
    assert "| t | score |" in out and "+0.3000" in out
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert saved["rows"][0]["significant"] == [None, True]
    assert main(["compare", str(constructed[0])]) == 2
    assert "at least two" in capsys.readouterr().err
