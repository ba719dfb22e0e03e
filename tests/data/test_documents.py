"""``data.cross_document_attention=false``: a packed row is scored as its documents alone.

Position ids restart at each document of a row; transformers turns restarting position ids into a
block-diagonal causal mask. Checked for the policy (``PolicyLogps``), the online reference
(``OnlineReference``) and a ``score-reference`` cache against each document run on its own.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

SEQ = 64


def test_document_positions_restart_at_each_document():
    from remit.data import document_positions

    doc = torch.tensor([[3, 3, 3, 4, 4, 5, -1, -1], [7, 7, 7, 7, 7, 7, 7, 7]])
    assert document_positions(doc).tolist() == [[0, 1, 2, 0, 1, 0, 0, 1], list(range(8))]


@pytest.fixture(scope="module")
def packed(tmp_path_factory, tiny_tokenizer, tiny_jsonl):
    from remit.data import DataSource, build_packed

    return build_packed([DataSource(str(tiny_jsonl))], tiny_tokenizer, SEQ,
                        cache_dir=tmp_path_factory.mktemp("docs_cache"))


def _alone(model, tokens: np.ndarray, doc: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs [L], counted [L]) of a packed row [L + 1] with each of its documents run on its own."""
    from remit.objectives import token_logps

    L = len(tokens) - 1
    out, counted = torch.zeros(L, dtype=torch.float64), torch.zeros(L, dtype=torch.bool)
    start = 0
    while start < L:
        end = start
        while end + 1 < L + 1 and doc[end + 1] == doc[start]:
            end += 1
        if doc[start] >= 0 and end > start:  # tokens start..end of one document: end - start targets
            ids = torch.from_numpy(tokens[start:end + 1].astype(np.int64))[None]
            with torch.no_grad():
                logits = model(ids[:, :-1]).logits
            out[start:end] = token_logps(logits, ids[:, 1:])[0].double()
            counted[start:end] = True
        start = end + 1
    return out, counted


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_row_equals_each_document_alone(packed, tiny_model_dir, attn):
    from remit.data import packed_batch
    from remit.midtrain.reference import OnlineReference, PolicyLogps
    from remit.models import load_model

    model = load_model(tiny_model_dir, dtype="float32", device="cpu")
    model.set_attn_implementation(attn)
    tok, doc = packed.rows(np.arange(6))
    assert all(len(set(d[d >= 0])) >= 2 for d in doc)  # every row holds several documents
    masked = packed_batch(tok, doc, cross_document_attention=False)
    crossing = packed_batch(tok, doc)
    assert "position_ids" not in crossing
    policy = PolicyLogps(model)
    with torch.no_grad():
        pol = policy(masked["input_ids"], masked["labels"], masked["position_ids"])[0].double()
        cross = policy(crossing["input_ids"], crossing["labels"])[0].double()
    ref = OnlineReference(model)(masked)[0].double()
    far = 0.0
    for r in range(len(tok)):
        alone, counted = _alone(model, tok[r], doc[r])
        assert counted.sum() > SEQ // 2
        assert torch.allclose(pol[r][counted], alone[counted], atol=2e-5, rtol=0)
        assert torch.equal(ref[r], pol[r])
        far = max(far, float((cross[r][counted] - alone[counted]).abs().max()))
    assert far > 1e-2  # attending across documents does change the log-probs


def test_cache_scored_without_cross_document_attention(tmp_path, packed, tiny_model_dir, tiny_jsonl, capsys):
    from remit.config import load_config
    from remit.midtrain import score
    from remit.midtrain.reference import CachedReference
    from remit.models import load_model, load_tokenizer

    scfg = load_config(score.ScoreConfig, None, [
        f"reference={tiny_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", f"data.seq_len={SEQ}",
        f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={tmp_path / 'refcache'}", "batch_size=3",
        "data.cross_document_attention=false"])
    cache = CachedReference(score.run(scfg))
    assert f"[remit score-reference] {len(packed)} rows x {SEQ} = {len(packed) * SEQ:,} token positions" \
        in capsys.readouterr().err  # it says how much it scores
    model = load_model(tiny_model_dir, dtype="float32", device="cpu")
    rows = np.arange(4)
    tok, doc = packed.rows(rows)
    got = cache({"row_index": torch.from_numpy(rows), "labels": torch.zeros(4, SEQ, dtype=torch.long)})[0].double()
    for r in range(len(rows)):
        alone, counted = _alone(model, tok[r], doc[r])
        assert torch.allclose(got[r][counted], alone[counted], atol=2e-5, rtol=0)
    # the packing part of the fingerprint says so: a run with cross-document attention refuses this cache
    from remit.midtrain.setup import cache_parts

    on = cache_parts(reference=None, tokenizer=load_tokenizer(tiny_model_dir), dataset=packed, data_cfg=scfg.data)
    scfg.data.cross_document_attention = True
    off = cache_parts(reference=None, tokenizer=load_tokenizer(tiny_model_dir), dataset=packed, data_cfg=scfg.data)
    assert on["packing"] == cache.meta["fingerprint"]["packing"] != off["packing"]


def test_flash_attention_at_micro_batch_above_1_is_refused():
    """transformers' varlen (flash) path for packed rows needs batch size 1: above it, documents would mix."""
    from types import SimpleNamespace

    from remit.data.iterator import check_document_attention
    from remit.errors import ConfigError

    fa2 = SimpleNamespace(_attn_implementation="flash_attention_2")
    with pytest.raises(ConfigError, match=r"^model.path=m: data.cross_document_attention=false needs "
                                          r"attn_implementation sdpa / eager / flex_attention at micro-batch 2 "
                                          r"\(the model's is 'flash_attention_2'"):
        check_document_attention(fa2, 2, False, "model.path=m")
    check_document_attention(fa2, 1, False, "model.path=m")  # one row: the varlen path masks documents
    check_document_attention(fa2, 8, True, "model.path=m")  # attending across documents was asked for
    for impl in ("sdpa", "eager", "flex_attention"):
        check_document_attention(SimpleNamespace(_attn_implementation=impl), 8, False, "model.path=m")
