"""Any split of one optimizer step (micro-batches x ranks) sees the same rows, across epochs."""

from __future__ import annotations

import numpy as np

from remit.data.iterator import BatchIterator
from remit.data.packing import PackedDataset


def _ds(n: int) -> PackedDataset:
    tokens = np.arange(n * 5, dtype=np.int32).reshape(n, 5)
    return PackedDataset(tokens=tokens, doc_ids=np.zeros_like(tokens), fingerprint="fp")


def _step_rows(micro: int, world: int, accum: int, steps: int, n: int = 37) -> list[set[int]]:
    its = [BatchIterator(_ds(n), micro, seed=3, rank=r, world_size=world, accumulation=accum) for r in range(world)]
    out = []
    for _ in range(steps):
        rows: list[int] = []
        for _ in range(accum):
            for it in its:
                rows += it.next_rows().tolist()
        assert len(rows) == len(set(rows)) == micro * world * accum
        out.append(set(rows))
    return out


def test_same_rows_for_every_split_across_epochs():
    ref = _step_rows(8, 1, 1, steps=13)  # 4 steps per epoch: crosses 3 epoch boundaries
    assert _step_rows(1, 1, 8, steps=13) == ref
    assert _step_rows(2, 2, 2, steps=13) == ref
    assert _step_rows(4, 2, 1, steps=13) == ref
    assert ref[0] != ref[4]  # a new epoch reshuffles
