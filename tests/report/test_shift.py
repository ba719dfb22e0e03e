"""remit analyze shift: chunked fp32 KL and log-prob gaps against a direct fp64 computation."""

from __future__ import annotations

import json

import pytest
import torch

TEXTS = ["Ann has 3 apples. So Ann has 3 + 4 = 7 apples.", "The dog sleeps by the river.", "12 * 3 = 36"]


def _fp64(path_p, path_q, tok):
    """Mean per-token KL(p || q) and mean log p - log q on the data tokens, full logits in fp64."""
    from remit.models import load_model

    p, q = load_model(path_p, device="cpu").double(), load_model(path_q, device="cpu").double()
    kls, gaps = [], []
    for t in TEXTS:
        ids = torch.tensor([[tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            lp, lq = (torch.log_softmax(m(ids).logits[0, :-1], -1) for m in (p, q))
        kls.append((lp.exp() * (lp - lq)).sum(-1))
        tgt = ids[0, 1:, None]
        gaps.append((lp.gather(1, tgt) - lq.gather(1, tgt))[:, 0])
    return torch.cat(kls).mean().item(), torch.cat(gaps).mean().item()


def test_shift_matches_fp64_and_is_zero_for_identical_models(role_models, tiny_tokenizer, tmp_path):
    from remit.report import shift

    m = role_models
    models = [str(m["pre"]), str(m["vanilla"]), str(m["rl_copy"]), str(m["rl"])]
    res = shift.compute_shift(models, TEXTS, labels=["pre", "vanilla", "rl-copy", "rl"], row_chunk=7,
                              vocab_chunk=37)  # odd chunk sizes: every chunk boundary is exercised
    rows = {r["label"]: r for r in res["models"]}
    assert res["target"] == "rl" and res["origin"] == "pre"
    assert rows["rl"]["kl_to_target"] == 0.0 and rows["rl-copy"]["kl_to_target"] == pytest.approx(0.0, abs=1e-7)
    assert rows["rl-copy"]["logp_gap"] == pytest.approx(0.0, abs=1e-7)
    assert rows["pre"]["kl_from_origin"] == 0.0
    for name in ("pre", "vanilla"):
        kl, gap = _fp64(m["rl"], m[name], tiny_tokenizer)
        assert kl > 1e-4
        assert rows[name]["kl_to_target"] == pytest.approx(kl, rel=1e-4, abs=1e-7)
        assert rows[name]["logp_gap"] == pytest.approx(gap, rel=1e-4, abs=1e-6)
    kl_from, _ = _fp64(m["vanilla"], m["pre"], tiny_tokenizer)
    assert rows["vanilla"]["kl_from_origin"] == pytest.approx(kl_from, rel=1e-4)
    n_tokens = sum(len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS)
    assert res["n_tokens"] == n_tokens

    shift.plot_shift(res, tmp_path / "shift.png")
    assert (tmp_path / "shift.png").stat().st_size > 5000


def test_run_writes_json_and_png(role_models, tmp_path):
    from remit.config import load_config
    from remit.report import shift

    probe = tmp_path / "probe.txt"
    probe.write_text(TEXTS[0])
    cfg = load_config(shift.ShiftConfig, None, [f"models=[{role_models['pre']}, {role_models['rl']}]",
                                                f"probe_file={probe}", f"out={tmp_path / 'out'}"])
    out = shift.run(cfg)
    res = json.loads((out / "shift.json").read_text())
    assert [r["label"] for r in res["models"]] == ["pre", "rl"]
    assert res["models"][0]["kl_to_target"] == pytest.approx(res["models"][1]["kl_from_origin"], rel=1e-6)
    assert (out / "shift.png").is_file()


def test_kl_chunking_closed_form():
    """Logits given directly (no LM head): chunked KL equals the textbook formula."""
    from remit.report.lm import ModelStates, kl_per_token, target_logps

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(10, 53, generator=g), torch.randn(10, 53, generator=g)
    sa, sb = ModelStates(a, torch.empty(0), None, logits=a), ModelStates(b, torch.empty(0), None, logits=b)
    la, lb = torch.log_softmax(a.double(), -1), torch.log_softmax(b.double(), -1)
    want = (la.exp() * (la - lb)).sum(-1)
    torch.testing.assert_close(kl_per_token(sa, sb, row_chunk=3, vocab_chunk=8).double(), want, atol=1e-5, rtol=1e-5)
    tgt = torch.arange(10)
    torch.testing.assert_close(target_logps(sa, tgt, row_chunk=4, vocab_chunk=5).double(), la[tgt, tgt], atol=1e-5,
                               rtol=0)
