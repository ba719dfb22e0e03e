"""Token-level knowledge distillation from the reference (baseline), over the full vocabulary.

    out = KD(alpha=0.5, temperature=1.0)(ObjectiveInputs(policy_logps, mask,
                                                         policy_logits=logits, ref_logits=ref_logits))

loss_t = (1 - alpha) * (-log p_theta(x_t)) + alpha * CE(p_ref^T, p_theta^T), where
CE(p, q) = -sum_v p_v log q_v and p^T = softmax(logits / T). As written in docs/method.md the soft term
is NOT multiplied by T^2 (Hinton et al. do, to keep gradient scale across T); ``scale_t2=True``
turns that on. With the default T = 1 the two agree. The soft term is computed by
:func:`soft_cross_entropy`, chunked over rows with a custom backward (grad = (q^T - p^T) / T), so no
[N, V] fp32 temporary other than the gradient itself is created. No gradient flows to ``ref_logits``.
Stats: ``ce_mean`` (hard term per token) and ``soft_ce_mean`` (soft term per token, before T^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from remit.config import check_range
from remit.errors import ConfigError
from remit.objectives.base import Needs, Objective, ObjectiveInputs, ObjectiveOutput, as_bool_mask, count
from remit.objectives.base import masked_nll_sum as _nll_sum
from remit.objectives.logprobs import _compute_dtype, _rows_per_chunk
from remit.objectives.stats import moments

__all__ = ["KD", "soft_cross_entropy"]


class _SoftCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, policy_logits: Tensor, ref_logits: Tensor, valid: Tensor, temperature: float,
                rows: int) -> Tensor:
        vocab = policy_logits.shape[-1]
        x, r = policy_logits.reshape(-1, vocab), ref_logits.detach().reshape(-1, vocab)
        v = valid.reshape(-1)
        n, dt = x.shape[0], _compute_dtype(policy_logits.dtype)
        out = torch.empty(n, dtype=dt, device=x.device)
        lse_q = torch.empty(n, dtype=dt, device=x.device)
        lse_p = torch.empty(n, dtype=dt, device=x.device)
        inv_t = 1.0 / temperature
        for s in range(0, n, rows):
            zq = x[s:s + rows].to(dt) * inv_t
            zp = r[s:s + rows].to(dt) * inv_t
            lse_q[s:s + rows] = torch.logsumexp(zq, -1)
            lse_p[s:s + rows] = lq = torch.logsumexp(zp, -1)
            # CE(p, q) = lse_q - sum_v p_v zq_v, with p = exp(zp - lse_p).
            p = zp.sub_(lq[:, None]).exp_()
            out[s:s + rows] = lse_q[s:s + rows] - (p * zq).sum(-1)
        out.masked_fill_(~v, 0.0)
        ctx.save_for_backward(policy_logits, r, v, lse_q, lse_p)
        ctx.inv_t, ctx.rows = inv_t, rows
        return out.view(valid.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        policy_logits, r, v, lse_q, lse_p = ctx.saved_tensors
        inv_t, rows = ctx.inv_t, ctx.rows
        vocab = policy_logits.shape[-1]
        x = policy_logits.reshape(-1, vocab)
        dt = lse_q.dtype
        # Zero (not multiply) the uncounted rows, so garbage reference logits there cannot leak NaN.
        g = (grad_out.reshape(-1).to(dt) * inv_t).masked_fill(~v, 0.0)
        grad = torch.empty_like(x, memory_format=torch.contiguous_format)
        in_place = grad.dtype == dt
        for s in range(0, x.shape[0], rows):
            gc = g[s:s + rows, None]
            buf = grad[s:s + rows] if in_place else torch.empty(gc.shape[0], vocab, dtype=dt, device=x.device)
            torch.mul(x[s:s + rows], inv_t, out=buf)
            buf.sub_(lse_q[s:s + rows, None]).exp_()
            p = r[s:s + rows].to(dt) * inv_t
            buf.sub_(p.sub_(lse_p[s:s + rows, None]).exp_()).mul_(gc)
            buf.masked_fill_(~v[s:s + rows, None], 0.0)
            if not in_place:
                grad[s:s + rows].copy_(buf)
        return grad.view(policy_logits.shape), None, None, None, None


def soft_cross_entropy(policy_logits: Tensor, ref_logits: Tensor, mask: Tensor | None = None, *,
                       temperature: float = 1.0, chunk_size: int | None = None) -> Tensor:
    """Per-position CE(softmax(ref / T), softmax(policy / T)) over the full vocabulary, [...] fp32.

    ``policy_logits``, ``ref_logits``: [..., V]; ``mask`` [...] (None: all counted); uncounted positions
    give 0.0 and no gradient. Gradient flows to ``policy_logits`` only.
    """
    if policy_logits.shape != ref_logits.shape:
        raise ValueError(f"policy_logits {tuple(policy_logits.shape)} and ref_logits {tuple(ref_logits.shape)} differ")
    lead = policy_logits.shape[:-1]
    valid = torch.ones(lead, dtype=torch.bool, device=policy_logits.device) if mask is None else mask
    if valid.shape != lead:
        raise ValueError(f"mask {tuple(valid.shape)} must be {tuple(lead)}")
    valid = valid if valid.dtype == torch.bool else valid != 0
    _check_t(temperature)
    rows = _rows_per_chunk(chunk_size, policy_logits.shape[-1], policy_logits.device)
    return _SoftCE.apply(policy_logits, ref_logits, valid, float(temperature), rows)


def _check_t(temperature: float) -> None:
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature):
        raise ConfigError(f"temperature={temperature!r} must be a finite number > 0")
    check_range("temperature", float(temperature), lo=0.0, lo_open=True)


@dataclass
class KD(Objective):
    """(1 - alpha) * CE + alpha * CE(p_ref^T, p_theta^T); denom = #counted tokens. ``scale_t2``: times T^2."""

    alpha: float = 0.5
    temperature: float = 1.0
    scale_t2: bool = False
    chunk_size: int | None = None
    needs: ClassVar[Needs] = "ref_logits"

    def __post_init__(self) -> None:
        if not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha):
            raise ConfigError(f"alpha={self.alpha!r} must be a number in [0, 1]")
        check_range("alpha", float(self.alpha), lo=0.0, hi=1.0)
        _check_t(self.temperature)

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:
        self._require(inputs, "ref_logits", "policy_logits")
        mask = as_bool_mask(inputs.mask, inputs.policy_logps)
        hard = _nll_sum(inputs.policy_logps, mask)
        soft_tok = soft_cross_entropy(inputs.policy_logits, inputs.ref_logits, mask,
                                      temperature=self.temperature, chunk_size=self.chunk_size)
        soft = soft_tok.sum() * (self.temperature ** 2 if self.scale_t2 else 1.0)
        loss_sum = (1.0 - self.alpha) * hard + self.alpha * soft
        stats = {**moments("ce", inputs.policy_logps.neg(), mask, std=False),
                 **moments("soft_ce", soft_tok, mask, std=False)} if inputs.want_stats else {}
        return ObjectiveOutput(loss_sum, count(mask), stats)
