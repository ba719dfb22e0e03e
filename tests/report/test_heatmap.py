"""remit analyze weights: the weights are remit_weights of both models' log-probs; the HTML shows every token."""

from __future__ import annotations

import html
import re

import pytest
import torch

TEXT = "Ann has 3 apples. Bob gives Ann 4 more. So Ann has 3 + 4 = 7 apples.\nThe cat sleeps at home."


def _direct_logps(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].double()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


def test_weights_equal_remit_weights_and_html_has_every_token(role_models, tmp_path):
    from remit.models import load_model, load_tokenizer
    from remit.objectives import remit_weights
    from remit.report import heatmap

    tok = load_tokenizer(role_models["pre"])
    pol, ref = load_model(role_models["pre"], device="cpu"), load_model(role_models["rl"], device="cpu")
    s = heatmap.score_texts(pol, ref, tok, [TEXT], epsilon=0.2, temperature=0.05, max_length=512)

    ids = [tok.bos_token_id] + tok(TEXT, add_special_tokens=False)["input_ids"]
    lp_pol, lp_ref = _direct_logps(pol, ids).float(), _direct_logps(ref, ids).float()
    want = remit_weights(lp_ref[None], lp_pol[None], torch.ones(1, len(ids) - 1, dtype=torch.bool),
                         epsilon=0.2, temperature=0.05)[0]
    assert s.token_id == ids[1:]
    torch.testing.assert_close(torch.tensor(s.logp_model), lp_pol, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(s.weight), want, atol=1e-5, rtol=0)
    assert max(s.weight) > 1.0 > min(s.weight)  # a small temperature spreads the weights

    cfg = heatmap.WeightsConfig(model=str(role_models["pre"]), reference=str(role_models["rl"]), text=TEXT,
                                temperature=0.05, out=str(tmp_path / "hm.html"))
    out = heatmap.run(cfg)
    doc = out.read_text()
    spans = re.findall(r"<span class='tok' data-w='([0-9.]+)'[^>]*>(.*?)</span>", doc, flags=re.S)
    assert len(spans) == len(ids) - 1
    shown = "".join(html.unescape(t) for _, t in spans)  # the token spans tile the text (gaps: whitespace)
    assert "".join(shown.split()) == "".join(TEXT.split())
    assert [float(w) for w, _ in spans] == pytest.approx(want.tolist(), abs=1e-4)
    for piece in (tok.decode([i]).strip() for i in ids[1:]):
        assert html.escape(piece) in doc
    assert "most up-weighted tokens" in doc and "most down-weighted tokens" in doc
    assert out.with_suffix(".png").stat().st_size > 1000


def test_identical_models_give_weight_exactly_one(role_models):
    from remit.models import load_model, load_tokenizer
    from remit.report import heatmap

    tok = load_tokenizer(role_models["rl"])
    a, b = load_model(role_models["rl"], device="cpu"), load_model(role_models["rl_copy"], device="cpu")
    s = heatmap.score_texts(a, b, tok, [TEXT, "12 * 3 = 36"], max_length=8)  # several windows per text
    assert s.weight == [1.0] * len(s.weight)
    assert len(s.weight) == len(tok(TEXT)["input_ids"]) + len(tok("12 * 3 = 36")["input_ids"])
    up, down = heatmap.top_tokens(s)
    assert up == [] and down == []
    # a long document (a book of a real corpus) is scored on its first max_windows windows only
    bos = tok.bos_token_id is not None
    two = heatmap.score_texts(a, b, tok, [TEXT, "12 * 3 = 36"], max_length=8, max_windows=2)
    n_text = len(tok(TEXT)["input_ids"])
    assert n_text > 2 * (8 - bos)
    assert two.text_of.count(0) == 2 * (8 - bos)
    assert two.text_of.count(1) == len(tok("12 * 3 = 36")["input_ids"])


def test_top_tokens_aggregates_by_token():
    from remit.report.heatmap import TokenScores, top_tokens

    s = TokenScores(texts=["x"], token_id=[5, 6, 5, 7], piece=["a", "b", "a", "c"], weight=[1.2, 0.9, 1.0, 1.05],
                    delta=[1.0, -1.0, 0.0, 0.5])
    up, down = top_tokens(s, k=5)
    assert [(r["token"], r["count"]) for r in up] == [("a", 2), ("c", 1)]
    assert up[0]["mean_weight"] == pytest.approx(1.1) and up[0]["mean_delta"] == pytest.approx(0.5)
    assert [r["token"] for r in down] == ["b"]


def test_config_errors_name_the_key():
    from remit.config import load_config
    from remit.errors import ConfigError
    from remit.report.heatmap import WeightsConfig

    with pytest.raises(ConfigError, match="text"):
        load_config(WeightsConfig, None, ["model=a", "reference=b"])
    with pytest.raises(ConfigError, match="epsilon"):
        load_config(WeightsConfig, None, ["model=a", "reference=b", "text=hi", "epsilon=0"])
