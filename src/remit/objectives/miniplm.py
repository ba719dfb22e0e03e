"""MiniPLM-style difference sampling (data-level baseline): keep the documents the reference finds easier.

    ids, weak = document_mean_losses(weak_logps, mask, doc_ids)     # one pass of the weak model
    _, ref = document_mean_losses(ref_logps, mask, doc_ids)         # one pass of the reference
    keep = ids[select_top(miniplm_scores(weak, ref), ratio=0.5)]    # then plain NTP on these documents

score(doc) = mean loss under the weak model (default: the pre-annealing checkpoint) - mean loss under
the reference; the top ``ratio`` of documents by score are kept (n = ceil(ratio * n_docs)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from remit.config import check_range
from remit.errors import ConfigError, DataError

__all__ = ["miniplm_scores", "select_top", "document_mean_losses"]


def _as_1d(x: Tensor | Sequence[float], name: str) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.float64).detach().cpu()
    if t.dim() != 1:
        raise DataError(f"{name} must be one loss per document (1-D), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).nonzero()[0])
        raise DataError(f"{name}[{bad}] = {t[bad].item()} is not finite")
    return t


def miniplm_scores(weak_doc_losses: Tensor | Sequence[float], ref_doc_losses: Tensor | Sequence[float]) -> Tensor:
    """Per-document score = weak mean loss - reference mean loss, fp64 [n_docs]."""
    weak, ref = _as_1d(weak_doc_losses, "weak_doc_losses"), _as_1d(ref_doc_losses, "ref_doc_losses")
    if weak.shape != ref.shape:
        raise DataError(f"weak_doc_losses has {weak.numel()} documents but ref_doc_losses has {ref.numel()}")
    return weak - ref


def select_top(scores: Tensor | Sequence[float], ratio: float) -> Tensor:
    """Indices (ascending, int64) of the ceil(ratio * n) highest scores; ties go to the lower index."""
    if not isinstance(ratio, (int, float)) or not math.isfinite(ratio):
        raise ConfigError(f"ratio={ratio!r} must be a number in (0, 1]")
    check_range("ratio", float(ratio), lo=0.0, hi=1.0, lo_open=True)
    s = _as_1d(scores, "scores")
    k = min(s.numel(), math.ceil(ratio * s.numel() - 1e-9))
    order = torch.sort(-s, stable=True).indices  # stable: equal scores keep document order
    return order[:k].sort().values


def document_mean_losses(logps: Tensor, mask: Tensor, doc_ids: Tensor) -> tuple[Tensor, Tensor]:
    """(doc ids, mean -log p over each document's counted tokens), both 1-D, sorted by id.

    ``logps``, ``mask``, ``doc_ids``: [B, T] (or any equal shape). Documents are keyed by their id over
    the whole batch, so a document split across packed rows is averaged over all its tokens. Documents
    with no counted token are left out.
    """
    if not (logps.shape == mask.shape == doc_ids.shape):
        raise ValueError(f"logps {tuple(logps.shape)}, mask {tuple(mask.shape)}, doc_ids {tuple(doc_ids.shape)} differ")
    m = (mask != 0).reshape(-1)
    ids, inv = torch.unique(doc_ids.reshape(-1)[m], return_inverse=True)
    nll = -logps.detach().reshape(-1)[m].double()
    sums = torch.zeros(ids.numel(), dtype=torch.float64, device=nll.device).scatter_add_(0, inv, nll)
    cnts = torch.zeros(ids.numel(), dtype=torch.float64, device=nll.device).scatter_add_(0, inv, torch.ones_like(nll))
    return ids, sums / cnts
