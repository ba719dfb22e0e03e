"""BatchIterator: batch layout, determinism, rank disjointness and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remit.data import BatchIterator, DataSource, PackedDataset, build_packed
from remit.errors import DataError


@pytest.fixture(scope="module")
def packed(tmp_path_factory, tiny_jsonl, tiny_tokenizer) -> PackedDataset:
    ds = build_packed(DataSource(str(tiny_jsonl)), tiny_tokenizer, 8, cache_dir=tmp_path_factory.mktemp("pk"))
    assert len(ds) >= 40
    return ds


def _take(it, n):
    return [next(it) for _ in range(n)]


def test_batch_layout(packed):
    it = BatchIterator(packed, 4, seed=0)
    for batch in _take(it, it.steps_per_epoch):
        rows = batch["row_index"].numpy()
        assert batch["row_index"].dtype == torch.int64 and batch["input_ids"].shape == (4, 8)
        assert torch.equal(batch["input_ids"], torch.from_numpy(packed.tokens[rows, :-1]).long())
        expected = torch.from_numpy(packed.tokens[rows, 1:]).long()
        pad = torch.from_numpy(packed.doc_ids[rows, 1:] < 0)
        assert torch.equal(batch["labels"], expected.masked_fill(pad, -100))
        assert torch.equal(batch["doc_ids"], torch.from_numpy(packed.doc_ids[rows, 1:]).long())
    # with B = 1 an epoch visits every row once, the padded last row included: -100 exactly at its padding
    epoch = _take(BatchIterator(packed, 1, seed=0), len(packed))
    assert sorted(b["row_index"].item() for b in epoch) == list(range(len(packed)))
    n_pad = int((packed.doc_ids[:, 1:] < 0).sum())
    assert n_pad > 0 and sum(int((b["labels"] == -100).sum()) for b in epoch) == n_pad


def test_deterministic_and_epochs(packed):
    a, b = BatchIterator(packed, 4, seed=1), BatchIterator(packed, 4, seed=1)
    n = 2 * a.steps_per_epoch + 3
    ra = [x["row_index"].tolist() for x in _take(a, n)]
    assert ra == [x["row_index"].tolist() for x in _take(b, n)]
    assert a.epoch == 2 and a.step == 3
    spe = a.steps_per_epoch
    e0, e1 = sum(ra[:spe], []), sum(ra[spe:2 * spe], [])
    assert len(set(e0)) == len(e0) == spe * 4  # no row twice within an epoch
    assert e0 != e1  # a new order each epoch
    other = [x["row_index"].tolist() for x in _take(BatchIterator(packed, 4, seed=2), n)]
    assert other != ra


def test_rank_disjoint(packed):
    world = 3
    its = [BatchIterator(packed, 2, seed=0, rank=r, world_size=world) for r in range(world)]
    spe = its[0].steps_per_epoch
    assert spe == len(packed) // 6
    per_rank = [np.concatenate([b["row_index"].numpy() for b in _take(it, spe)]) for it in its]
    for r in range(world):
        for q in range(r + 1, world):
            assert not set(per_rank[r]) & set(per_rank[q])
    # together, the ranks see the same rows in the same global order as one rank with B * world
    single = BatchIterator(packed, 6, seed=0)
    glob = np.concatenate([b["row_index"].numpy() for b in _take(single, spe)])
    interleaved = np.stack([p.reshape(spe, 2) for p in per_rank], axis=1).reshape(-1)
    assert np.array_equal(glob, interleaved)


def test_exact_resume_mid_epoch(packed):
    ref = BatchIterator(packed, 3, seed=5, rank=1, world_size=2)
    k = ref.steps_per_epoch + 2  # into the second epoch
    _take(ref, k)
    state = ref.state_dict()
    expected = _take(ref, 2 * ref.steps_per_epoch)
    resumed = BatchIterator(packed, 3, seed=5, rank=1, world_size=2)
    resumed.load_state_dict(state)
    for e, r in zip(expected, _take(resumed, len(expected))):
        for key in ("input_ids", "labels", "doc_ids", "row_index"):
            assert torch.equal(e[key], r[key])


def test_errors(packed):
    with pytest.raises(DataError, match="fewer than one global batch"):
        BatchIterator(packed, len(packed), seed=0, world_size=2)
    it = BatchIterator(packed, 2, seed=0)
    state = it.state_dict()
    with pytest.raises(DataError, match="micro_batch_size was 2 when saved, now 4"):
        BatchIterator(packed, 4, seed=0).load_state_dict(state)
