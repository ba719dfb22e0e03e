"""MiniPLM difference sampling (baseline): keep the documents a weak model finds harder than the reference.

Data-level: before training, every packed document gets its mean loss under the weak model (default:
the starting checkpoint, ``method.weak_model``) and under the reference (``reference.path``); the top
``method.select_ratio`` by weak loss - reference loss are kept and repacked, then trained with plain NTP.
The kept documents keep their loss mask (a ``loss=assistant`` chat source counts only assistant turns);
the scores themselves are mean losses over every token of a document.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from remit.data.iterator import packed_batch
from remit.data.packing import PackedDataset
from remit.errors import ConfigError
from remit.methods.base import Method, PrepareContext
from remit.objectives.base import NTP
from remit.objectives.miniplm import miniplm_scores, select_top
from remit.utils.io import fingerprint

__all__ = ["METHOD", "miniplm_select", "repack_selected"]


@torch.no_grad()
def _doc_losses(scorer, dataset, batch_size: int, device: str, cross_document_attention: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean NLL per document id over the whole packed dataset (documents split across rows are joined)."""
    tokens = dataset.tokens.astype("int64")
    doc_ids = torch.from_numpy(dataset.doc_ids.astype("int64"))
    n_docs = int(doc_ids.max()) + 1 if doc_ids.numel() else 0
    sums = torch.zeros(n_docs, dtype=torch.float64)
    cnts = torch.zeros(n_docs, dtype=torch.float64)
    for i in range(0, tokens.shape[0], batch_size):
        # A label counts for the document it belongs to; positions whose next token starts another
        # document (the eos boundary) are scored for the document of the label.
        batch = packed_batch(tokens[i:i + batch_size], doc_ids[i:i + batch_size].numpy(),
                             cross_document_attention=cross_document_attention)
        batch["labels"] = torch.from_numpy(tokens[i:i + batch_size, 1:])  # padding too, as before (not counted)
        logps, _ = scorer({k: batch[k].to(device) for k in ("input_ids", "labels", "position_ids") if k in batch})
        ids = doc_ids[i:i + batch_size, 1:].reshape(-1)
        valid = ids >= 0
        nll = -logps.detach().cpu().double().reshape(-1)
        sums.scatter_add_(0, ids[valid], nll[valid])
        cnts.scatter_add_(0, ids[valid], torch.ones_like(nll[valid]))
    present = cnts > 0
    return torch.nonzero(present).flatten(), (sums[present] / cnts[present])


def miniplm_select(dataset, weak, reference, ratio: float, *, batch_size: int, device: str,
                   cross_document_attention: bool = True) -> list[int]:
    """Document ids kept by MiniPLM difference sampling: top ``ratio`` by weak loss - reference loss."""
    ids, weak_loss = _doc_losses(weak, dataset, batch_size, device, cross_document_attention)
    ids_r, ref_loss = _doc_losses(reference, dataset, batch_size, device, cross_document_attention)
    assert torch.equal(ids, ids_r)
    keep = select_top(miniplm_scores(weak_loss, ref_loss), ratio)
    out = ids[keep].tolist()
    if not out:
        raise ConfigError(f"method.select_ratio={ratio} keeps no document (of {ids.numel()})")
    assert len(out) == min(ids.numel(), math.ceil(ratio * ids.numel() - 1e-9))
    return out


def _stream(rows: np.ndarray) -> np.ndarray:
    """Rows overlap by one token (stride seq_len): the stream is row 0's first token plus every row's tail."""
    return np.concatenate([rows[0, :1], rows[:, 1:].reshape(-1)])


def repack_selected(dataset, keep_ids: list[int]):
    """A packed dataset holding only the documents ``keep_ids``, in their stream order, same row layout.

    The loss mask (``dataset.loss_mask``, loss=assistant sources) travels with the kept tokens.
    """
    L = dataset.seq_len
    stream, docs = _stream(np.asarray(dataset.tokens)), _stream(np.asarray(dataset.doc_ids))
    mask = dataset.loss_mask(np.arange(len(dataset)))
    keep = np.isin(docs, np.asarray(keep_ids, dtype=docs.dtype)) & (docs >= 0)
    stream, docs = stream[keep], docs[keep]
    pad = int(dataset.meta.get("pad_token_id", 0))
    n_rows = max(1, -(-(len(stream) - 1) // L))
    full = n_rows * L + 1
    tokens = np.full(full, pad, dtype=np.int32)
    doc_ids = np.full(full, -1, dtype=np.int32)
    tokens[:len(stream)], doc_ids[:len(stream)] = stream, docs
    idx = np.arange(n_rows)[:, None] * L + np.arange(L + 1)[None, :]
    kept_mask = None
    if mask is not None:
        kept_mask = np.zeros(full, dtype=np.uint8)  # padding is not counted
        kept_mask[:len(stream)] = _stream(mask)[keep]
        kept_mask = kept_mask[idx]
    fp = fingerprint({"base": dataset.fingerprint, "keep": fingerprint(sorted(int(i) for i in keep_ids))})
    meta = {**dataset.meta, "num_tokens": int(len(stream)), "num_docs": len(keep_ids), "selected_from": dataset.fingerprint}
    return PackedDataset(tokens[idx], doc_ids[idx], fp, meta, kept_mask)


def prepare(ctx: PrepareContext):
    """Score, select and repack the documents; the manifest records how many were scored and kept."""
    cfg = ctx.cfg
    m = cfg.method
    weak = ctx.load_frozen(m.weak_model or cfg.model.path, "method.weak_model" if m.weak_model else "model.path")
    ref = ctx.load_frozen(cfg.reference.path, "reference.path")
    keep = miniplm_select(ctx.dataset, weak, ref, m.select_ratio, batch_size=cfg.optim.micro_batch_size,
                          device=ctx.device, cross_document_attention=cfg.data.cross_document_attention)
    info = {"docs_scored": int(ctx.dataset.meta.get("num_docs", 0)), "docs_kept": len(keep)}
    return repack_selected(ctx.dataset, keep), info


METHOD = Method(name="miniplm", build=lambda cfg: NTP(), reference="scorer", options=("select_ratio", "weak_model"),
                prepare=prepare, reference_why="MiniPLM scores documents, a log-prob cache is not enough",
                help="keep the select_ratio documents of highest weak-minus-reference loss, then NTP")
