"""The ReMiT placebo: the same weights per row as ReMiT, at shuffled positions."""

from __future__ import annotations

import torch

from remit.objectives.base import ObjectiveInputs, masked_nll_sum
from remit.objectives.placebo import ReMiTPlacebo, shuffle_within_rows
from remit.objectives.remit import ReMiT, remit_weights


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    pol = -torch.rand(3, 12, generator=g) * 4
    ref = -torch.rand(3, 12, generator=g) * 4
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[0, :3] = False
    mask[2, 7:] = False
    return pol, ref, mask


def test_shuffle_keeps_each_rows_weights_and_moves_them():
    pol, ref, mask = _inputs()
    w = remit_weights(ref, pol, mask)
    torch.manual_seed(1)
    s = shuffle_within_rows(w, mask)
    assert torch.equal(s[~mask], torch.zeros_like(s[~mask]))
    for r in range(3):
        assert torch.equal(torch.sort(s[r][mask[r]]).values, torch.sort(w[r][mask[r]]).values)
    assert not torch.equal(s, w)  # a permutation of 9-12 distinct values is the identity with prob ~1e-6
    torch.manual_seed(1)
    assert torch.equal(shuffle_within_rows(w, mask), s)  # seeded: reproducible


def test_placebo_loss_uses_the_shuffled_weights_and_the_same_statistics():
    pol, ref, mask = _inputs(3)
    torch.manual_seed(5)
    out = ReMiTPlacebo()(ObjectiveInputs(pol, mask, ref_logps=ref))
    torch.manual_seed(5)
    w = shuffle_within_rows(remit_weights(ref, pol, mask), mask)
    assert torch.allclose(out.loss_sum, masked_nll_sum(pol, mask, w))
    assert out.denom == mask.sum()
    real = ReMiT()(ObjectiveInputs(pol, mask, ref_logps=ref))
    for key in ("w.sum", "w.sumsq", "w_frac_hi.hits", "w_hist.hist"):  # the weight distribution is ReMiT's
        assert torch.allclose(torch.as_tensor(out.stats[key]), torch.as_tensor(real.stats[key]))
    assert not torch.allclose(out.loss_sum, real.loss_sum)


def test_identical_models_give_ntp_exactly():
    pol, _, mask = _inputs(4)
    out = ReMiTPlacebo()(ObjectiveInputs(pol, mask, ref_logps=pol.clone()))
    assert torch.equal(out.loss_sum, masked_nll_sum(pol, mask, mask.float()))
