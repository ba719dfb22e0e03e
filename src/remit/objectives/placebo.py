"""The ReMiT placebo: ReMiT's own token weights, shuffled within each row (a control arm for experiments).

    out = ReMiTPlacebo()(ObjectiveInputs(policy_logps, mask, ref_logps=ref_logps))

Each row keeps exactly the multiset of weights ReMiT would give it (same mean, spread and clip saturation),
but which token gets which weight is random, so whatever ReMiT gains from *where* the reference puts
weight is removed while everything else (the weight distribution, the extra reference forward, the
step count) stays. A placebo within noise of vanilla and a ReMiT arm above both is what a real effect looks
like. The permutation draws from torch's global generator (seeded by the run, saved in its checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from remit.objectives.base import ObjectiveInputs, ObjectiveOutput, as_bool_mask, count, masked_nll_sum
from remit.objectives.remit import ReMiT, remit_weights_and_delta, weight_stats

__all__ = ["shuffle_within_rows", "ReMiTPlacebo"]


def shuffle_within_rows(values: Tensor, mask: Tensor) -> Tensor:
    """``values`` [B, T] with the entries at counted positions randomly permuted within each row; 0 elsewhere."""
    m = as_bool_mask(mask, values)
    b, t = values.shape
    pos = torch.arange(t, device=values.device).expand(b, t)
    # Counted positions first: in a random order (destination) and in their original order (source).
    dest = torch.where(m, torch.rand(b, t, device=values.device), 2.0 + pos.to(torch.float32)).argsort(dim=1)
    src = torch.where(m, pos, t + pos).argsort(dim=1)
    out = torch.zeros_like(values)
    out.scatter_(1, dest, values.gather(1, src))
    return out.masked_fill_(~m, 0.0)


@dataclass
class ReMiTPlacebo(ReMiT):
    """ReMiT with its weights shuffled within each row before the loss (same options, same statistics)."""

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:
        self._require(inputs, "ref_logps")
        if self.per_document:
            self._require(inputs, "doc_ids")
        mask = as_bool_mask(inputs.mask, inputs.policy_logps)
        other = inputs.base_logps if inputs.base_logps is not None else inputs.policy_logps
        w, delta = remit_weights_and_delta(inputs.ref_logps, other, mask, epsilon=self.epsilon,
                                           temperature=self.temperature,
                                           doc_ids=inputs.doc_ids if self.per_document else None)
        w = shuffle_within_rows(w, mask)
        loss_sum = masked_nll_sum(inputs.policy_logps, mask, w)
        denom = count(mask) if self.normalize == "tokens" else w.sum(dtype=torch.float32)
        stats = weight_stats(w, delta, mask, epsilon=self.epsilon, bins=self.hist_bins) if inputs.want_stats else {}
        return ObjectiveOutput(loss_sum, denom, stats)
