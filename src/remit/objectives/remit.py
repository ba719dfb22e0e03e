"""ReMiT token weights and the re-weighted next-token objective (docs/method.md, "The token weight").

    w = remit_weights(ref_logps, policy_logps, mask, epsilon=0.2, temperature=1.0)   # [B, T], detached
    out = ReMiT()(ObjectiveInputs(policy_logps, mask, ref_logps=ref_logps))
    out.stats   # summable sums: w_mean, w_std, w_frac_hi/lo, w_hist, delta_mean/std once summarised

delta = ref - policy (detached), centred by its mean over the counted positions of the same row
(or of the same document when ``doc_ids`` is given), w = clip(2 sigmoid(centred / tau), 1 - eps, 1 + eps)
at counted positions and 0 elsewhere. Identical log-probs give w == 1.0 exactly, so ReMiT reduces to NTP
bit for bit. Everything is vectorised (row sums or one ``scatter_add`` over document segments): the cost
is a handful of [B, T] element-wise ops (see benchmarks/bench_objectives.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor

from remit.config import check_choice, check_range
from remit.errors import ConfigError
from remit.objectives.base import (
    Needs,
    Objective,
    ObjectiveInputs,
    ObjectiveOutput,
    as_bool_mask,
    count,
    masked_nll_sum,
)
from remit.objectives.stats import fraction, histogram, moments

__all__ = ["remit_weights", "remit_weights_and_delta", "center_delta", "weight_stats", "ReMiT"]


def _check_positive(key: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number > 0")
    check_range(key, float(value), lo=0.0, lo_open=True)


def _segment_ids(doc_ids: Tensor) -> Tensor:
    """[B, T] -> flat [B*T] ids of contiguous runs of equal doc id within a row (a new run at each row start).

    Packed rows hold each document as one contiguous run, so a run is a document (or the part of a
    document that falls into this row: rows are centred independently, as in the per-row default).
    """
    change = torch.ones_like(doc_ids, dtype=torch.bool)
    change[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    return change.reshape(-1).cumsum(0) - 1


def center_delta(delta: Tensor, mask: Tensor, doc_ids: Tensor | None = None) -> Tensor:
    """``delta`` minus its mean over the counted positions of its row (or packed document), [B, T] fp32.

    ``delta`` must already be 0 at uncounted positions; there the result is meaningless (callers mask it).
    A row/document with no counted position has mean 0 (no NaN).
    """
    m = as_bool_mask(mask, delta)
    if doc_ids is None:
        return delta - delta.sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp_min(1)
    if doc_ids.shape != delta.shape:
        raise ValueError(f"doc_ids {tuple(doc_ids.shape)} must have the log-probs' shape {tuple(delta.shape)}")
    seg = _segment_ids(doc_ids)
    n = seg.numel()
    sums = torch.zeros(n, dtype=delta.dtype, device=delta.device).scatter_add_(0, seg, delta.reshape(-1))
    cnts = torch.zeros(n, dtype=delta.dtype, device=delta.device).scatter_add_(0, seg, m.reshape(-1).to(delta.dtype))
    return delta - (sums / cnts.clamp_min(1)).gather(0, seg).view_as(delta)


def remit_weights_and_delta(ref_logps: Tensor, policy_logps: Tensor, mask: Tensor, *, epsilon: float = 0.2,
                            temperature: float = 1.0, doc_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(weights, delta), both [B, T] fp32 and detached; delta = ref - policy at counted positions, 0 elsewhere."""
    _check_positive("epsilon", epsilon)
    _check_positive("temperature", temperature)
    if ref_logps.shape != policy_logps.shape:
        raise ValueError(f"ref_logps {tuple(ref_logps.shape)} and policy_logps {tuple(policy_logps.shape)} differ")
    if ref_logps.dim() != 2:
        raise ValueError(f"log-probs must be [B, T], got {tuple(ref_logps.shape)}")
    m = as_bool_mask(mask, policy_logps)
    with torch.no_grad():
        diff = ref_logps.detach().float() - policy_logps.detach().float()
        delta = torch.where(m, diff, torch.zeros_like(diff))  # also drops NaN/inf at uncounted positions
        centered = center_delta(delta, m, doc_ids)
        # 2 * sigmoid(0) is exactly 1.0 in floating point, hence w == 1 where the models agree.
        w = centered.div_(temperature).sigmoid_().mul_(2.0).clamp_(1.0 - epsilon, 1.0 + epsilon)
        w.masked_fill_(~m, 0.0)
    return w, delta


def remit_weights(ref_logps: Tensor, policy_logps: Tensor, mask: Tensor, *, epsilon: float = 0.2,
                  temperature: float = 1.0, doc_ids: Tensor | None = None) -> Tensor:
    """ReMiT token weights [B, T] fp32, detached: in [1 - eps, 1 + eps] where counted, 0.0 where mask is 0.

    Per-row centring by default; ``doc_ids`` [B, T] => per-document centring (packed rows). A row or
    document without counted positions gets weight 0 everywhere (no NaN).
    """
    return remit_weights_and_delta(ref_logps, policy_logps, mask, epsilon=epsilon, temperature=temperature,
                                   doc_ids=doc_ids)[0]


def weight_stats(weights: Tensor, delta: Tensor, mask: Tensor, *, epsilon: float, bins: int = 10) -> dict[str, Tensor]:
    """Summable statistics of ReMiT weights over the counted positions (``remit.objectives.stats``).

    Logged (after :func:`remit.objectives.stats.summarize`) as ``w_mean``, ``w_std`` (population),
    ``w_frac_hi`` / ``w_frac_lo`` (share at the upper / lower clip), ``w_hist`` (counts in ``bins`` equal
    bins over [1 - eps, 1 + eps]) with ``w_hist_range``, and ``delta_mean``, ``delta_std``.
    """
    lo, hi = 1.0 - epsilon, 1.0 + epsilon
    # The clip writes the fp32 value of the bound; compare against that value, with an fp32 ulp of slack.
    tol = 4 * torch.finfo(torch.float32).eps
    w = weights.detach()
    return {**moments("w", w, mask), **fraction("w_frac_hi", w >= hi - tol, mask),
            **fraction("w_frac_lo", w <= lo + tol, mask), **histogram("w_hist", w, mask, lo=lo, hi=hi, bins=bins),
            **moments("delta", delta, mask)}


@dataclass
class ReMiT(Objective):
    """Re-weighted NTP: loss_sum = sum_t m_t w_t (-log p_theta), denom = #counted tokens (or sum of w).

    ``per_document``: centre delta per packed document (needs ``doc_ids``). ``normalize="weights"``
    divides by the sum of the weights instead of the token count (method.md DECISION option).
    Frozen-base variant: when ``base_logps`` is given, delta = ref - base (static weights) instead of
    ref - policy. Stats: :func:`weight_stats` (``hist_bins`` bins), unless ``inputs.want_stats`` is False.
    """

    epsilon: float = 0.2
    temperature: float = 1.0
    per_document: bool = False
    normalize: Literal["tokens", "weights"] = "tokens"
    hist_bins: int = 10
    needs: ClassVar[Needs] = "ref_logps"

    def __post_init__(self) -> None:
        _check_positive("epsilon", self.epsilon)
        _check_positive("temperature", self.temperature)
        check_choice("normalize", self.normalize, ("tokens", "weights"))

    def place(self, weights: Tensor, mask: Tensor) -> Tensor:
        """Where the weights go: on their own tokens (a control arm overrides this, ``objectives.placebo``)."""
        return weights

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:
        self._require(inputs, "ref_logps")
        if self.per_document:
            self._require(inputs, "doc_ids")
        mask = as_bool_mask(inputs.mask, inputs.policy_logps)
        other = inputs.base_logps if inputs.base_logps is not None else inputs.policy_logps
        w, delta = remit_weights_and_delta(inputs.ref_logps, other, mask, epsilon=self.epsilon,
                                           temperature=self.temperature,
                                           doc_ids=inputs.doc_ids if self.per_document else None)
        w = self.place(w, mask)
        loss_sum = masked_nll_sum(inputs.policy_logps, mask, w)
        denom = count(mask) if self.normalize == "tokens" else w.sum(dtype=torch.float32)
        stats = weight_stats(w, delta, mask, epsilon=self.epsilon, bins=self.hist_bins) if inputs.want_stats else {}
        return ObjectiveOutput(loss_sum, denom, stats)
