"""Deterministic, rank-sharded, resumable micro-batches over a packed dataset.

    it = BatchIterator(ds, micro_batch_size=8, seed=0, rank=rank, world_size=world, accumulation=4)
    batch = next(it)            # input_ids, labels, doc_ids [B, L]; row_index [B]
    state = it.state_dict()     # ... later: it.load_state_dict(state) continues exactly there

Epoch e visits the rows in the order ``default_rng([seed, e]).permutation(N)``; the k-th
optimizer step of an epoch takes the next ``G = B * world_size * accumulation`` rows, and
micro-batch m of rank r gets block ``m * world_size + r`` of B of them, so ranks never share
a row, and any split of the same G (1 x 8 or 8 x 1 micro-batches, 1 or 2 ranks) sees the same
rows in every step, across epoch boundaries too. The rows that do not fill a whole optimizer
step are left out of that epoch (different ones every epoch). The iterator is endless: it
moves to the next epoch by itself.

``labels[b, t]`` is the token after ``input_ids[b, t]`` (-100 at padding) and
``doc_ids[b, t]`` is the document of that target token.

``cross_document_attention=False`` (``data.cross_document_attention``): the batch also holds
``position_ids`` [B, L] that restart at 0 where the INPUT token's document changes (and at each row
start). transformers reads restarting position ids of a batch without an attention mask as packed
sequences and builds a block-diagonal causal mask (sdpa / eager / flex_attention), so no token attends
across a document boundary and every document is scored as if alone (``tests/data/test_documents.py``).
Other implementations (flash_attention_2 / 3: transformers' ``_is_packed_sequence`` takes the varlen path
only at batch size 1) would attend across documents at a micro-batch above 1; ``check_document_attention``
refuses that combination before training or scoring. The label after a document's eos (the next document's first token)
is still counted, predicted from the finished document's context alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from remit.data.packing import PackedDataset
from remit.errors import ConfigError, DataError

IGNORE_INDEX = -100


def document_positions(doc_ids: torch.Tensor) -> torch.Tensor:
    """Position ids [B, L] that restart at 0 at each change of ``doc_ids`` [B, L] (the input tokens' documents)."""
    L = doc_ids.shape[1]
    t = torch.arange(L, device=doc_ids.device).expand_as(doc_ids)
    change = torch.ones_like(doc_ids, dtype=torch.bool)
    change[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    start = torch.where(change, t, torch.zeros_like(t)).cummax(dim=1).values
    return t - start


DOCUMENT_MASKED_ATTENTION = ("sdpa", "eager", "flex_attention")  # block-diagonal masks at any batch size


def check_document_attention(model_config, micro_batch_size: int, cross_document_attention: bool, where: str) -> None:
    """Refuse an attention implementation that would attend across the documents of a packed row."""
    impl = getattr(model_config, "_attn_implementation", None) or "eager"
    if cross_document_attention or micro_batch_size <= 1 or impl in DOCUMENT_MASKED_ATTENTION:
        return
    raise ConfigError(f"{where}: data.cross_document_attention=false needs attn_implementation "
                      f"{' / '.join(DOCUMENT_MASKED_ATTENTION)} at micro-batch {micro_batch_size} (the model's is "
                      f"{impl!r}, whose packed-sequence path in transformers needs batch size 1): set "
                      f"attn_implementation in the model's config.json, or the micro-batch size to 1")


def packed_batch(tokens: np.ndarray, doc: np.ndarray, *, cross_document_attention: bool = True,
                 loss_mask: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """input_ids, labels, doc_ids (of the targets) [and position_ids] of packed rows ``[B, L + 1]``.

    ``loss_mask`` ([B, L + 1], 0 = not counted: ``PackedDataset.loss_mask``) sets those labels to -100.
    """
    tok, doc = (np.asarray(a, dtype=np.int64) for a in (tokens, doc))
    labels = tok[:, 1:].copy()
    labels[doc[:, 1:] < 0] = IGNORE_INDEX
    if loss_mask is not None:
        labels[np.asarray(loss_mask)[:, 1:] == 0] = IGNORE_INDEX
    out = {"input_ids": torch.from_numpy(tok[:, :-1].copy()), "labels": torch.from_numpy(labels),
           "doc_ids": torch.from_numpy(doc[:, 1:].copy())}
    if not cross_document_attention:
        out["position_ids"] = document_positions(torch.from_numpy(doc[:, :-1].copy()))
    return out


class BatchIterator:
    def __init__(self, dataset: PackedDataset, micro_batch_size: int, *, seed: int, rank: int = 0,
                 world_size: int = 1, accumulation: int = 1, cross_document_attention: bool = True):
        if micro_batch_size < 1:
            raise ConfigError(f"micro_batch_size={micro_batch_size} must be >= 1")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank={rank} must be in [0, world_size={world_size})")
        self.dataset = dataset
        self.micro_batch_size = micro_batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        if accumulation < 1:
            raise ConfigError(f"accumulation={accumulation} must be >= 1")
        self.accumulation = accumulation
        self.cross_document_attention = cross_document_attention
        global_rows = micro_batch_size * world_size * accumulation
        self.steps_per_epoch = (len(dataset) // global_rows) * accumulation  # micro-steps of this rank
        if self.steps_per_epoch == 0:
            raise DataError(f"the packed dataset has {len(dataset)} rows, fewer than one global batch "
                            f"(micro_batch_size {micro_batch_size} x world_size {world_size} x accumulation "
                            f"{accumulation}): add data or lower seq_len / batch_size")
        self.epoch = 0
        self.step = 0  # step within the epoch
        self._perm: np.ndarray | None = None

    def _order(self) -> np.ndarray:
        if self._perm is None:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.dataset))
        return self._perm

    def next_rows(self) -> np.ndarray:
        """Global row indices of this rank's next micro-batch."""
        if self.step >= self.steps_per_epoch:
            self.epoch, self.step, self._perm = self.epoch + 1, 0, None
        b = self.micro_batch_size
        opt_step, micro = divmod(self.step, self.accumulation)
        start = (opt_step * self.accumulation * self.world_size + micro * self.world_size + self.rank) * b
        rows = self._order()[start:start + b]
        self.step += 1
        return rows

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> dict[str, Any]:
        return self.make_batch(self.next_rows())

    def make_batch(self, rows: np.ndarray) -> dict[str, Any]:
        idx = np.asarray(rows, dtype=np.int64)
        tok, doc = self.dataset.rows(idx)  # only these rows are read
        batch = packed_batch(tok, doc, cross_document_attention=self.cross_document_attention,
                             loss_mask=self.dataset.loss_mask(idx))
        return {**batch, "row_index": torch.from_numpy(idx.copy())}

    def seek(self, optimizer_steps: int) -> None:
        """Continue after ``optimizer_steps`` global steps: the position depends only on the global batch, not on
        how it is split over processes and micro-batches (a checkpoint resumes on another number of processes)."""
        per_epoch = self.steps_per_epoch // self.accumulation
        self.epoch, opt_step = divmod(int(optimizer_steps), per_epoch)
        self.step, self._perm = opt_step * self.accumulation, None

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed, "micro_batch_size": self.micro_batch_size,
                "world_size": self.world_size, "accumulation": self.accumulation, "num_rows": len(self.dataset),
                "fingerprint": self.dataset.fingerprint}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        for key in ("seed", "micro_batch_size", "world_size", "accumulation", "num_rows", "fingerprint"):
            if state.get(key, 1 if key == "accumulation" else None) != mine[key]:
                raise DataError(f"cannot resume: the data changed since the checkpoint ({key} was "
                                f"{state.get(key)!r} when saved, now {mine[key]!r}); restore the data config "
                                f"(data.*, optim batch sizes, number of processes) or start afresh with "
                                f"overwrite=true")
        self.epoch, self.step, self._perm = int(state["epoch"]), int(state["step"]), None
