"""MiniPLM's repacking keeps what the selected documents count in the loss (loss=assistant chat sources)."""

from __future__ import annotations

import json

import numpy as np

from remit.data import BatchIterator, DataSource, build_packed
from remit.data.packing import PackedDataset
from remit.methods.miniplm import repack_selected


def _chats(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": f"It is {i + 1}."}]
            for i in range(n)]


def test_repacked_documents_keep_their_assistant_only_mask(tmp_path, tiny_tokenizer):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in _chats(30)))
    ds = build_packed(DataSource(str(path), kind="chat", loss="assistant"), tiny_tokenizer, 32, cache_dir=tmp_path)
    docs = np.asarray(ds.doc_ids)
    keep = sorted(set(docs[docs >= 0].tolist()))[::2]
    sel = repack_selected(ds, keep)
    assert sel.mask is not None

    def per_doc(d):  # {doc id: (tokens, mask)} over the de-overlapped stream
        t, i, m = (np.concatenate([a[0, :1], a[:, 1:].reshape(-1)]) for a in
                   (np.asarray(d.tokens), np.asarray(d.doc_ids), d.loss_mask(np.arange(len(d)))))
        return {k: (t[i == k].tolist(), m[i == k].tolist()) for k in set(i[i >= 0].tolist())}

    before, after = per_doc(ds), per_doc(sel)
    assert set(after) == set(keep) and all(after[k] == before[k] for k in keep)
    assert 0 < sum(sum(m) for _, m in after.values()) < sum(len(m) for _, m in after.values())
    batch = BatchIterator(sel, 2, seed=0).make_batch(np.arange(2))
    counted = tiny_tokenizer.decode(batch["labels"][batch["labels"] != -100].tolist())
    assert "It is" in counted and "What is" not in counted  # the user turns stay out of the loss
    sel.save(tmp_path / "sel")
    assert np.array_equal(PackedDataset.load(tmp_path / "sel").loss_mask([0, 1]), sel.loss_mask([0, 1]))
