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

from remit.objectives.base import as_bool_mask
from remit.objectives.remit import ReMiT

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

    def place(self, weights: Tensor, mask: Tensor) -> Tensor:
        return shuffle_within_rows(weights, mask)
