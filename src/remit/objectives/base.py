"""The objective call signature (``ObjectiveInputs`` -> ``ObjectiveOutput``) and plain next-token prediction.

Every objective returns the SUM of its per-token losses over this micro-batch, this micro-batch's
share of the denominator and summable statistics (``remit.objectives.stats``); the trainer sums both over micro-batches and ranks and divides once
(the global-token-count contract, docs/ARCHITECTURE.md), so accumulation never changes the gradient.

    out = NTP()(ObjectiveInputs(policy_logps=token_logps(logits, labels), mask=labels != -100))
    (out.loss_sum / out.denom).backward()        # single micro-batch, single rank
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor

__all__ = ["ObjectiveInputs", "ObjectiveOutput", "Objective", "NTP", "Needs", "masked_nll_sum", "count"]

Needs = Literal["none", "ref_logps", "ref_logits"]


@dataclass
class ObjectiveInputs:
    policy_logps: Tensor  # [B, T] fp32, with grad
    mask: Tensor  # [B, T] bool/float, 1 = counted position
    ref_logps: Tensor | None = None  # [B, T] fp32, no grad (online or cached)
    base_logps: Tensor | None = None  # [B, T] frozen-base variant (replaces policy in delta)
    doc_ids: Tensor | None = None  # [B, T] int, packed-document ids
    policy_logits: Tensor | None = None  # [B, T, V] (KD only)
    ref_logits: Tensor | None = None  # [B, T, V] (KD only)
    want_stats: bool = True  # False: the trainer will not log this micro-batch, skip the statistics


@dataclass
class ObjectiveOutput:
    loss_sum: Tensor  # scalar: SUM over counted tokens (not divided)
    denom: Tensor  # scalar: this micro-batch's share of the denominator
    # Summable statistics (sums over counted tokens, ``remit.objectives.stats``); the trainer adds them over
    # micro-batches and ranks and logs ``stats.summarize`` of the totals.
    stats: dict[str, Tensor] = field(default_factory=dict)


def as_bool_mask(mask: Tensor, like: Tensor) -> Tensor:
    if mask.shape != like.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have the shape of the log-probs {tuple(like.shape)}")
    return mask if mask.dtype == torch.bool else mask != 0


def masked_nll_sum(policy_logps: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """sum over counted positions of ``weights * -logp`` (weights=None: 1). NaN/inf outside the mask is ignored.

    NTP, ReMiT and RHO-1 all go through here, so that uniform weights reproduce NTP bit for bit.
    """
    nll = policy_logps.neg() if weights is None else policy_logps.neg() * weights
    return torch.where(as_bool_mask(mask, policy_logps), nll, torch.zeros_like(nll)).sum()


def count(mask: Tensor) -> Tensor:
    """Number of counted positions as an fp32 scalar tensor (the NTP denominator)."""
    return mask.sum(dtype=torch.float32) if mask.dtype == torch.bool else (mask != 0).sum(dtype=torch.float32)


class Objective:
    """Base of the objective objects: ``objective(inputs) -> ObjectiveOutput``."""

    needs: ClassVar[Needs] = "none"

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def _require(self, inputs: ObjectiveInputs, *names: str) -> None:
        for name in names:
            if getattr(inputs, name) is None:
                raise ValueError(f"{type(self).__name__} needs ObjectiveInputs.{name} (needs={self.needs!r})")


@dataclass
class NTP(Objective):
    """Plain next-token prediction: loss_sum = sum of -log p over counted tokens, denom = their count."""

    needs: ClassVar[Needs] = "none"

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:
        mask = as_bool_mask(inputs.mask, inputs.policy_logps)
        return ObjectiveOutput(masked_nll_sum(inputs.policy_logps, mask), count(mask), {})
