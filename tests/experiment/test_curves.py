"""Sample efficiency from curves: the crossing of the baseline's final value, per seed, and its seed-level reading."""

from __future__ import annotations

import pytest

from remit.experiment.config import Contrast
from remit.experiment.curves import crossing, efficiency


def test_crossing_interpolates_inside_its_grid_bracket():
    pts = [[0, 3.0], [100, 2.0], [200, 1.0]]
    assert crossing(pts, 1.5, -1.0) == {"reached": True, "tokens": 150.0, "bracket": [100.0, 200.0]}
    assert crossing(pts, 3.5, -1.0)["tokens"] == 0.0  # already there at the start
    assert crossing(pts, 0.5, -1.0)["reached"] is False
    acc = [[0, 0.1], [100, 0.4], [200, 0.5]]
    assert crossing(acc, 0.25, 1.0)["tokens"] == pytest.approx(50.0)


def test_efficiency_per_seed_and_seed_level():
    metric = "world/world/bpb"
    curves = {metric: {"remit": {"0": [[0, 3.0], [100, 2.0], [200, 1.0]], "1": [[0, 3.0], [100, 1.8], [200, 1.2]]},
                       "vanilla": {"0": [[0, 3.0], [100, 2.5], [200, 1.5]], "1": [[0, 3.0], [100, 2.4], [200, 1.8]]}}}
    r = efficiency(Contrast(name="e", treatment="remit", baseline="vanilla"), curves, [0, 1], metric, 0.95)
    assert [p["fraction"] for p in r["per_seed"]] == pytest.approx([0.75, 0.5])  # 150 / 200, 100 / 200
    assert r["fraction_mean"] == pytest.approx(0.625) and r["fraction_ci"][0] < 0.625 < r["fraction_ci"][1]
    curves[metric]["vanilla"]["1"][-1][1] = 1.0  # seed 1's baseline ends below the treatment's whole curve
    r = efficiency(Contrast(name="e", treatment="remit", baseline="vanilla"), curves, [0, 1], metric, 0.95)
    assert "fraction_mean" not in r and "1 of 2 seed(s) (1) never reach" in r["reading"]
