"""MiniPLM document scores/selection, ReMiT's weight statistics and the summable-statistics summary."""

from __future__ import annotations

import pytest
import torch

from remit.errors import ConfigError, DataError
from remit.objectives import (
    document_mean_losses,
    miniplm_scores,
    remit_weights,
    select_top,
    stats,
    summarize,
    weight_stats,
)

# ---------------------------------------------------------------------------------------------- MiniPLM


def test_scores_and_top_selection():
    scores = miniplm_scores([2.0, 3.0, 1.0, 2.5], [1.9, 2.5, 1.2, 2.2])  # [0.1, 0.5, -0.2, 0.3]
    torch.testing.assert_close(scores, torch.tensor([0.1, 0.5, -0.2, 0.3], dtype=torch.float64))
    assert select_top(scores, 0.5).tolist() == [1, 3]
    assert select_top(scores, 1.0).tolist() == [0, 1, 2, 3]
    assert select_top(scores, 0.25).tolist() == [1]
    assert select_top(scores, 0.3).tolist() == [1, 3]  # ceil(0.3 * 4) = 2
    assert select_top([1.0, 1.0, 1.0, 0.0], 0.5).tolist() == [0, 1]  # ties keep document order


def test_selection_rounding():
    assert len(select_top(torch.arange(10.0), 0.6)) == 6
    assert len(select_top(torch.arange(3.0), 0.5)) == 2
    assert select_top(torch.zeros(0), 0.5).tolist() == []


def test_miniplm_bad_input():
    with pytest.raises(DataError, match="documents"):
        miniplm_scores([1.0, 2.0], [1.0])
    with pytest.raises(DataError, match=r"weak_doc_losses\[1\]"):
        miniplm_scores([1.0, float("nan")], [1.0, 1.0])
    for bad in (0.0, 1.01, float("nan")):
        with pytest.raises(ConfigError, match="ratio"):
            select_top([1.0, 2.0], bad)


def test_document_mean_losses_over_packed_rows():
    logps = -torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.bool)
    doc_ids = torch.tensor([[4, 4, 9, 9], [9, 9, 2, 5]])  # doc 9 spans both rows; its 6.0 is not counted
    ids, mean = document_mean_losses(logps, mask, doc_ids)
    assert ids.tolist() == [2, 4, 5, 9]
    torch.testing.assert_close(mean, torch.tensor([7.0, 1.5, 8.0, 4.0], dtype=torch.float64))
    none_counted = document_mean_losses(logps, torch.zeros_like(mask), doc_ids)
    assert none_counted[0].numel() == 0


# ----------------------------------------------------------------------------------------- weight_stats


def test_weight_stats_closed_form():
    w = torch.tensor([[0.8, 1.2, 1.0, 1.2, 0.0]])
    delta = torch.tensor([[-1.0, 1.0, 0.0, 2.0, 123.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)
    s = summarize(weight_stats(w, delta, mask, epsilon=0.2, bins=20))
    assert s["w_mean"] == pytest.approx(1.05, abs=1e-6)
    assert s["w_std"] == pytest.approx(torch.tensor([0.8, 1.2, 1.0, 1.2]).double().std(unbiased=False).item(), abs=1e-6)
    assert s["w_frac_hi"] == 0.5 and s["w_frac_lo"] == 0.25
    assert len(s["w_hist"]) == 20 and sum(s["w_hist"]) == 4 and s["w_hist_range"] == pytest.approx([0.8, 1.2])
    assert s["w_hist"][0] == 1 and s["w_hist"][-1] == 2 and s["w_hist"][10] == 1
    assert s["delta_mean"] == pytest.approx(0.5) and s["delta_std"] == pytest.approx(1.118034, abs=1e-5)


def test_weight_stats_on_real_weights_and_empty_mask():
    g = torch.Generator().manual_seed(0)
    ref, pol = -torch.rand(4, 50, generator=g) * 8, -torch.rand(4, 50, generator=g) * 8
    mask = torch.rand(4, 50, generator=g) > 0.2
    w = remit_weights(ref, pol, mask, epsilon=0.1)
    s = summarize(weight_stats(w, ref - pol, mask, epsilon=0.1))
    assert s["w_frac_hi"] == pytest.approx((w[mask] >= 1.1 - 1e-6).float().mean().item())
    assert s["w_frac_lo"] == pytest.approx((w[mask] <= 0.9 + 1e-6).float().mean().item())
    assert s["w_frac_hi"] > 0.1 and s["w_frac_lo"] > 0.1  # spread of 8 nats: many clipped at both ends
    assert sum(s["w_hist"]) == int(mask.sum()) and len(s["w_hist"]) == 10
    assert summarize(weight_stats(w, ref - pol, torch.zeros_like(mask), epsilon=0.1)) == {}  # nothing counted


def test_summable_stats_add_up_across_pieces_like_one_batch():
    """Statistics of two halves, accumulated, flattened and summarised == those of the whole batch."""
    g = torch.Generator().manual_seed(3)
    ref, pol = -torch.rand(6, 40, generator=g) * 4, -torch.rand(6, 40, generator=g) * 4
    mask = torch.rand(6, 40, generator=g) > 0.3
    w = remit_weights(ref, pol, mask, epsilon=0.2)
    whole = summarize(weight_stats(w, ref - pol, mask, epsilon=0.2))
    sums: dict = {}
    for part in (slice(0, 2), slice(2, 6)):
        stats.accumulate(sums, weight_stats(w[part], (ref - pol)[part], mask[part], epsilon=0.2))
    vec, layout = stats.flatten(sums)
    halves = summarize(stats.unflatten(vec, layout))
    assert halves.keys() == whole.keys() and halves["w_hist"] == whole["w_hist"]
    for k in ("w_mean", "w_std", "w_frac_hi", "w_frac_lo", "delta_mean", "delta_std"):
        assert halves[k] == pytest.approx(whole[k], abs=1e-12)
    with pytest.raises(ValueError, match="<metric>.<part>"):
        summarize({"nodot": torch.zeros(())})
