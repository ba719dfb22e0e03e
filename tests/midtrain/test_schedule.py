"""LR schedule shapes against their closed forms."""

import math

import pytest

from remit.midtrain.config import ScheduleConfig
from remit.midtrain.schedule import lr_multiplier


def curve(cfg, total=100):
    return [lr_multiplier(s, total, cfg) for s in range(total)]


def test_constant_with_warmup():
    c = curve(ScheduleConfig(kind="constant", warmup_fraction=0.1))
    assert c[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert all(v == 1.0 for v in c[10:])


@pytest.mark.parametrize("shape,fn", [
    ("linear", lambda p: 1 - p),
    ("cosine", lambda p: 0.5 * (1 + math.cos(math.pi * p))),
    ("1-sqrt", lambda p: 1 - math.sqrt(p)),
])
def test_wsd_shapes(shape, fn):
    cfg = ScheduleConfig(kind="wsd", warmup_fraction=0.1, decay_fraction=0.2, decay_shape=shape, min_lr_ratio=0.1)
    c = curve(cfg)
    assert c[9] == pytest.approx(1.0) and c[0] == pytest.approx(0.1)
    assert all(v == 1.0 for v in c[10:80])  # stable phase
    for s in range(80, 100):
        p = (s - 80 + 1) / 20
        assert c[s] == pytest.approx(0.1 + 0.9 * fn(p))
    assert c[-1] == pytest.approx(0.1)  # lands on min_lr_ratio
    assert all(a >= b for a, b in zip(c[79:], c[80:]))  # monotone decay


def test_midtrain_default_decays_from_first_step_to_near_zero():
    c = curve(ScheduleConfig())  # wsd, decay over the whole run
    assert c[0] < 1.0 and c[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(c, c[1:]))
