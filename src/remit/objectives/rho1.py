"""RHO-1 selective language modelling (baseline): train only on the tokens with the highest excess loss.

    out = Rho1(keep_ratio=0.6)(ObjectiveInputs(policy_logps, mask, ref_logps=ref_logps))

excess_t = loss_theta - loss_ref = log p_ref - log p_theta (detached). The top ``keep_ratio`` of the
counted tokens of the MICRO-batch are kept (n_keep = ceil(keep_ratio * n_counted)); loss_sum is their
summed NLL and denom = n_keep, so the global contract divides by the number kept over the whole step.
Departure: the paper selects over the whole batch; selecting per micro-batch keeps one forward pass
(with one micro-batch per step the two coincide). Ties at the threshold are broken by ``torch.topk``.
Stats: ``kept_fraction`` (share of counted tokens kept) and ``excess_kept_mean`` / ``_std``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from remit.config import check_range
from remit.errors import ConfigError
from remit.objectives.base import Needs, Objective, ObjectiveInputs, ObjectiveOutput, as_bool_mask, masked_nll_sum
from remit.objectives.stats import fraction, moments

__all__ = ["Rho1", "rho1_keep_mask"]


def rho1_keep_mask(excess: torch.Tensor, mask: torch.Tensor, keep_ratio: float) -> torch.Tensor:
    """Bool mask of the ceil(keep_ratio * n) counted positions with the largest ``excess``."""
    m = as_bool_mask(mask, excess)
    n = int(m.sum())
    # Subtract a hair so that e.g. 0.6 * 10 = 6.000000000000001 keeps 6, not 7.
    k = min(n, math.ceil(keep_ratio * n - 1e-9))
    keep = torch.zeros(m.numel(), dtype=torch.bool, device=m.device)
    if k > 0:
        scores = torch.where(m, excess.detach().float(), torch.full_like(excess, -math.inf, dtype=torch.float32))
        keep[torch.topk(scores.reshape(-1), k, sorted=False).indices] = True
    return keep.view(m.shape) & m


@dataclass
class Rho1(Objective):
    """Keep the top ``keep_ratio`` (0 < r <= 1) of counted tokens by excess loss; denom = number kept."""

    keep_ratio: float = 0.6
    needs: ClassVar[Needs] = "ref_logps"

    def __post_init__(self) -> None:
        if not isinstance(self.keep_ratio, (int, float)) or not math.isfinite(self.keep_ratio):
            raise ConfigError(f"keep_ratio={self.keep_ratio!r} must be a number in (0, 1]")
        check_range("keep_ratio", float(self.keep_ratio), lo=0.0, hi=1.0, lo_open=True)

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:
        self._require(inputs, "ref_logps")
        mask = as_bool_mask(inputs.mask, inputs.policy_logps)
        with torch.no_grad():
            excess = inputs.ref_logps.detach().float() - inputs.policy_logps.detach().float()
            keep = rho1_keep_mask(excess, mask, self.keep_ratio)
        n_keep = keep.sum(dtype=torch.float32)
        stats = {**fraction("kept_fraction", keep, mask), **moments("excess_kept", excess, keep)} \
            if inputs.want_stats else {}
        return ObjectiveOutput(masked_nll_sum(inputs.policy_logps, keep), n_keep, stats)
