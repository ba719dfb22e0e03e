"""Method registry: ``method.name`` -> objective object, plus MiniPLM's document selection.

    objective = build_objective(cfg.method)          # NTP() / ReMiT(...) / Rho1(...) / KD(...)
    register_method("mine", lambda m, chunk: MyObjective(...))   # extend without touching the engine

Every method runs through the same loop, data order and schedule; they differ only by the objective
object (and, for ``miniplm``, by the documents kept before training, see :func:`miniplm_select`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from remit.errors import ConfigError
from remit.midtrain.config import MethodConfig

__all__ = ["build_objective", "register_method", "METHOD_BUILDERS", "miniplm_select", "repack_selected"]

Builder = Callable[[MethodConfig, "int | None"], Any]


def _ntp(m: MethodConfig, chunk: int | None):
    from remit.objectives import NTP

    return NTP()


def _remit(m: MethodConfig, chunk: int | None):
    from remit.objectives import ReMiT

    return ReMiT(epsilon=m.epsilon, temperature=m.temperature, per_document=m.per_document, normalize=m.normalize)


def _rho1(m: MethodConfig, chunk: int | None):
    from remit.objectives import Rho1

    return Rho1(keep_ratio=m.keep_ratio)


def _kd(m: MethodConfig, chunk: int | None):
    from remit.objectives import KD

    return KD(alpha=m.alpha, temperature=m.kd_temperature, chunk_size=chunk)


METHOD_BUILDERS: dict[str, Builder] = {
    "ntp": _ntp,
    "remit": _remit,
    "rho1": _rho1,
    "kd": _kd,
    "miniplm": _ntp,  # documents are selected first (miniplm_select), then plain NTP
}


def register_method(name: str, builder: Builder) -> None:
    METHOD_BUILDERS[name] = builder


def build_objective(method: MethodConfig, chunk_size: int | None = None):
    builder = METHOD_BUILDERS.get(method.name)
    if builder is None:
        raise ConfigError(f"method.name={method.name!r} is not accepted. Accepted values: "
                          f"{', '.join(sorted(METHOD_BUILDERS))}.")
    return builder(method, chunk_size)


@torch.no_grad()
def _doc_losses(scorer, dataset, batch_size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean NLL per document id over the whole packed dataset (documents split across rows are joined)."""
    tokens = torch.from_numpy(dataset.tokens.astype("int64"))
    doc_ids = torch.from_numpy(dataset.doc_ids.astype("int64"))
    n_docs = int(doc_ids.max()) + 1 if doc_ids.numel() else 0
    sums = torch.zeros(n_docs, dtype=torch.float64)
    cnts = torch.zeros(n_docs, dtype=torch.float64)
    for i in range(0, tokens.shape[0], batch_size):
        rows = tokens[i:i + batch_size]
        # A label counts for the document it belongs to; positions whose next token starts another
        # document (the eos boundary) are scored for the document of the label.
        batch = {"input_ids": rows[:, :-1].to(device), "labels": rows[:, 1:].to(device)}
        logps, _ = scorer(batch)
        ids = doc_ids[i:i + batch_size, 1:].reshape(-1)
        valid = ids >= 0
        nll = -logps.detach().cpu().double().reshape(-1)
        sums.scatter_add_(0, ids[valid], nll[valid])
        cnts.scatter_add_(0, ids[valid], torch.ones_like(nll[valid]))
    present = cnts > 0
    return torch.nonzero(present).flatten(), (sums[present] / cnts[present])


def miniplm_select(dataset, weak, reference, ratio: float, *, batch_size: int, device: str) -> list[int]:
    """Document ids kept by MiniPLM difference sampling: top ``ratio`` by weak loss - reference loss."""
    from remit.objectives import miniplm_scores, select_top

    ids, weak_loss = _doc_losses(weak, dataset, batch_size, device)
    ids_r, ref_loss = _doc_losses(reference, dataset, batch_size, device)
    assert torch.equal(ids, ids_r)
    keep = select_top(miniplm_scores(weak_loss, ref_loss), ratio)
    out = ids[keep].tolist()
    if not out:
        raise ConfigError(f"method.select_ratio={ratio} keeps no document (of {ids.numel()})")
    assert len(out) == min(ids.numel(), math.ceil(ratio * ids.numel() - 1e-9))
    return out


def repack_selected(dataset, keep_ids: list[int]):
    """A packed dataset holding only the documents ``keep_ids``, in their stream order, same row layout."""
    import numpy as np

    from remit.data import PackedDataset
    from remit.utils.io import fingerprint

    L = dataset.seq_len
    # Rows overlap by one token (stride seq_len): the stream is row 0 plus every row's tail.
    stream = np.concatenate([dataset.tokens[0, :1], dataset.tokens[:, 1:].reshape(-1)])
    docs = np.concatenate([dataset.doc_ids[0, :1], dataset.doc_ids[:, 1:].reshape(-1)])
    keep = np.isin(docs, np.asarray(keep_ids, dtype=docs.dtype)) & (docs >= 0)
    stream, docs = stream[keep], docs[keep]
    pad = int(dataset.meta.get("pad_token_id", 0))
    n_rows = max(1, -(-(len(stream) - 1) // L))
    full = n_rows * L + 1
    tokens = np.full(full, pad, dtype=np.int32)
    doc_ids = np.full(full, -1, dtype=np.int32)
    tokens[:len(stream)], doc_ids[:len(stream)] = stream, docs
    idx = np.arange(n_rows)[:, None] * L + np.arange(L + 1)[None, :]
    fp = fingerprint({"base": dataset.fingerprint, "keep": fingerprint(sorted(int(i) for i in keep_ids))})
    meta = {**dataset.meta, "num_tokens": int(len(stream)), "num_docs": len(keep_ids), "selected_from": dataset.fingerprint}
    return PackedDataset(tokens[idx], doc_ids[idx], fp, meta)
