"""remit_weights: closed forms, edge cases, validation, and hypothesis properties (bounds, mask, centring, order)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from remit.errors import ConfigError
from remit.objectives import center_delta, remit_weights, remit_weights_and_delta


def _expected(delta_row: list[float], mask_row: list[bool], eps: float, tau: float) -> list[float]:
    counted = [d for d, m in zip(delta_row, mask_row) if m]
    mean = sum(counted) / max(len(counted), 1)
    out = []
    for d, m in zip(delta_row, mask_row):
        w = 2.0 / (1.0 + math.exp(-(d - mean) / tau))
        out.append(min(max(w, 1 - eps), 1 + eps) if m else 0.0)
    return out


def test_closed_form_small_example():
    policy = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.1, -0.2, -0.3, -9.0]])
    ref = torch.tensor([[-0.8, -2.5, -0.5, -1.0], [-0.3, -0.2, -0.1, 7.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    w = remit_weights(ref, policy, mask, epsilon=0.3, temperature=0.5)
    delta = (ref - policy).tolist()
    expected = [_expected(delta[i], mask[i].tolist(), 0.3, 0.5) for i in range(2)]
    torch.testing.assert_close(w, torch.tensor(expected), atol=1e-6, rtol=0)
    assert w[0, 3].item() == pytest.approx(1.3)  # delta 2.0 far above the row mean: clipped at 1 + eps


def test_identical_logps_give_exactly_one_and_zero_off_mask():
    g = torch.Generator().manual_seed(0)
    lp = -torch.rand(4, 16, generator=g) * 6
    mask = torch.rand(4, 16, generator=g) > 0.3
    w = remit_weights(lp.clone(), lp, mask)
    assert torch.equal(w, mask.float())  # exactly 1.0 where counted, exactly 0.0 elsewhere


def test_empty_rows_and_garbage_off_mask_give_no_nan():
    ref = torch.tensor([[float("nan"), -1.0, float("-inf")], [-1.0, -2.0, -3.0]])
    policy = torch.tensor([[float("inf"), -2.0, -1.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[0, 1, 0], [0, 0, 0]])
    w = remit_weights(ref, policy, mask)
    assert torch.isfinite(w).all()
    assert torch.equal(w, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))  # one counted token: centred to 0


def test_weights_are_detached():
    policy = torch.randn(2, 5, requires_grad=True)
    ref = torch.randn(2, 5, requires_grad=True)
    w, delta = remit_weights_and_delta(ref, policy, torch.ones(2, 5))
    assert not w.requires_grad and not delta.requires_grad


def test_per_document_centering_matches_a_loop():
    g = torch.Generator().manual_seed(3)
    ref, policy = -torch.rand(3, 12, generator=g) * 4, -torch.rand(3, 12, generator=g) * 4
    mask = torch.rand(3, 12, generator=g) > 0.2
    doc_ids = torch.tensor([[0] * 5 + [1] * 4 + [2] * 3, [2] * 12, [7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 9, 10]])
    w = remit_weights(ref, policy, mask, doc_ids=doc_ids, epsilon=0.5)
    expected = torch.zeros(3, 12)
    delta = ref - policy
    for i in range(3):
        for d in doc_ids[i].unique():
            sel = doc_ids[i] == d
            exp = _expected(delta[i][sel].tolist(), mask[i][sel].tolist(), 0.5, 1.0)
            expected[i][sel] = torch.tensor(exp)
    torch.testing.assert_close(w, expected, atol=1e-6, rtol=0)
    # One document per row is the per-row default.
    one_doc = torch.zeros(3, 12, dtype=torch.long)
    torch.testing.assert_close(remit_weights(ref, policy, mask, doc_ids=one_doc), remit_weights(ref, policy, mask))


@pytest.mark.parametrize("key,value", [("epsilon", 0.0), ("epsilon", -0.1), ("epsilon", float("nan")),
                                       ("temperature", 0.0), ("temperature", -1.0), ("temperature", float("inf"))])
def test_invalid_hyperparameters_raise_config_error(key, value):
    x = torch.zeros(1, 3)
    with pytest.raises(ConfigError, match=key):
        remit_weights(x, x, torch.ones(1, 3), **{key: value})
    with pytest.raises(ValueError):  # ConfigError is also a ValueError
        remit_weights(x, x, torch.ones(1, 3), **{key: value})


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ"):
        remit_weights(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 4))
    with pytest.raises(ValueError, match="mask"):
        remit_weights(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 4))


# ---------------------------------------------------------------------------------------------- properties
@st.composite
def _batch(draw):
    b = draw(st.integers(1, 4))
    t = draw(st.integers(1, 12))
    vals = st.floats(-12, 0, allow_nan=False, width=32)
    ref = torch.tensor(draw(st.lists(vals, min_size=b * t, max_size=b * t))).view(b, t)
    pol = torch.tensor(draw(st.lists(vals, min_size=b * t, max_size=b * t))).view(b, t)
    mask = torch.tensor(draw(st.lists(st.booleans(), min_size=b * t, max_size=b * t))).view(b, t)
    eps = draw(st.floats(0.01, 0.9))
    tau = draw(st.floats(0.1, 5.0))
    return ref, pol, mask, eps, tau


@settings(max_examples=80, deadline=None)
@given(_batch())
def test_weights_bounded_and_zero_off_mask(batch):
    ref, pol, mask, eps, tau = batch
    w = remit_weights(ref, pol, mask, epsilon=eps, temperature=tau)
    lo, hi = torch.tensor(1 - eps, dtype=torch.float32), torch.tensor(1 + eps, dtype=torch.float32)
    assert bool(((w[mask] >= lo) & (w[mask] <= hi)).all())
    assert bool((w[~mask] == 0).all())


@settings(max_examples=80, deadline=None)
@given(_batch())
def test_centred_delta_has_zero_mean_per_row(batch):
    ref, pol, mask, _, _ = batch
    delta = torch.where(mask, ref - pol, torch.zeros_like(ref))
    c = center_delta(delta, mask)
    for i in range(c.shape[0]):
        if mask[i].any():
            assert abs(c[i][mask[i]].double().mean().item()) <= 1e-5


@settings(max_examples=80, deadline=None)
@given(_batch())
def test_weights_are_monotone_in_delta_within_a_row(batch):
    ref, pol, mask, eps, tau = batch
    w = remit_weights(ref, pol, mask, epsilon=eps, temperature=tau)
    delta = ref - pol
    for i in range(w.shape[0]):
        d, wi = delta[i][mask[i]], w[i][mask[i]]
        order = torch.argsort(d)
        # ties in delta may differ by float rounding (one ulp of the centring), so allow 1e-6
        assert bool((wi[order][1:] >= wi[order][:-1] - 1e-6).all())


@settings(max_examples=40, deadline=None)
@given(_batch(), st.floats(-3, 3))
def test_shifting_a_rows_reference_does_not_change_its_weights(batch, shift):
    ref, pol, mask, eps, tau = batch
    w = remit_weights(ref, pol, mask, epsilon=eps, temperature=tau)
    w_shift = remit_weights(ref + shift, pol, mask, epsilon=eps, temperature=tau)
    torch.testing.assert_close(w_shift, w, atol=1e-5, rtol=0)
