"""The RL-vs-SFT reference comparison: token kinds from the text, and the numbers from per-token lists."""

from __future__ import annotations

import math

import pytest

from remit.report.guidance import char_kinds, summarize, token_kinds

DOC = "A cat sat.\n\nQuestion: What is 7 + 5 - 3?\nAnswer: 7 + 5 = 12. 12 - 3 = 9. The answer is 9."


def _kind_of(sub: str, nth: int = 0) -> str:
    i = -1
    for _ in range(nth + 1):
        i = DOC.index(sub, i + 1)
    return char_kinds(DOC)[i]


def test_char_kinds_of_a_solved_task():
    assert _kind_of("cat") == "plain text"
    assert _kind_of("What") == "question"
    a = DOC.index("Answer: ") + len("Answer: ")
    assert char_kinds(DOC)[a] == "format choice (steps)"  # the first character of the answer
    assert _kind_of("5", 1) == "operand" and _kind_of("12") == "result" and _kind_of("3", 1) == "operand"
    assert _kind_of("=") == "connective" and _kind_of("The answer") == "connective"
    assert char_kinds(DOC)[DOC.rindex("9")] == "answer"
    assert char_kinds(DOC)[DOC.index("= 9.") + 2] == "result"  # the result of the last step


def test_direct_answer_starts_with_a_format_choice():
    doc = "Question: What is 1 + 2?\nAnswer: The answer is 3."
    k = char_kinds(doc)
    assert k[doc.index("The")] == "format choice (answer alone)" and k[doc.rindex("3")] == "answer"


def test_token_kinds_use_the_first_visible_character():
    spans = [(0, 1), (1, 5), (DOC.index("12") - 1, DOC.index("12") + 2), None]
    assert token_kinds(DOC, spans) == ["plain text", "plain text", "result", "plain text"]


def test_summarize_closed_form():
    w_rl = [1.2, 1.0, 0.8, 1.1]
    w_sft = [1.0, 1.0, 1.0, 1.1]
    d_rl = [1.0, 0.0, -1.0, 0.5]
    d_sft = [0.5, 0.0, -0.5, 0.25]
    kinds = ["answer", "answer", "plain text", "operand"]
    s = summarize(w_rl, w_sft, d_rl, d_sft, kinds)
    assert s["n_tokens"] == 4
    assert s["corr_delta"] == pytest.approx(1.0)  # d_sft is d_rl / 2
    assert s["share_weight_diff_gt"] == pytest.approx(0.5)  # tokens 0 and 2 differ by 0.2
    a = s["per_kind"]["answer"]
    assert a["n"] == 2 and a["w_rl"] == pytest.approx(1.1) and a["w_sft"] == pytest.approx(1.0)
    assert a["w_diff"] == pytest.approx(0.1) and a["share_rl_higher"] == 0.5 and a["share_rl_lower"] == 0.0
    assert s["per_kind"]["plain text"]["share_rl_lower"] == 1.0
    assert "format choice (steps)" not in s["per_kind"]
    cw = s["corr_weight"]
    mx, my = sum(w_rl) / 4, sum(w_sft) / 4
    num = sum((x - mx) * (y - my) for x, y in zip(w_rl, w_sft))
    den = math.sqrt(sum((x - mx) ** 2 for x in w_rl) * sum((y - my) ** 2 for y in w_sft))
    assert cw == pytest.approx(num / den)


def test_what_rl_changed_closed_form():
    """``changed``: the tokens whose two deltas differ by more than changed_nats (logp_RL - logp_SFT), by direction."""
    d_rl = [1.0, 0.0, -1.0, 0.5, 0.05]
    d_sft = [0.5, 0.0, -0.5, 0.25, 0.0]  # differences +0.5, 0, -0.5, +0.25, +0.05
    w_rl, w_sft = [1.2, 1.0, 0.8, 1.1, 1.0], [1.0, 1.0, 1.0, 1.05, 0.9]
    ch = summarize(w_rl, w_sft, d_rl, d_sft, ["answer"] * 5, changed_nats=0.1)["changed"]
    assert ch["n"] == 3 and ch["share"] == pytest.approx(0.6) and ch["nats"] == 0.1
    assert ch["up"]["n"] == 2 and ch["up"]["w_rl"] == pytest.approx(1.15) and ch["up"]["w_sft"] == pytest.approx(1.025)
    assert ch["down"] == {"n": 1, "w_rl": pytest.approx(0.8), "w_sft": pytest.approx(1.0)}
    assert ch["w_rl"] == pytest.approx((1.2 + 0.8 + 1.1) / 3)
    assert summarize(w_rl, w_sft, d_rl, d_sft, ["answer"] * 5, changed_nats=0.3)["changed"]["n"] == 2
    none = summarize(w_rl, w_sft, d_rl, d_rl, ["answer"] * 5)["changed"]  # identical references: nothing changed
    assert none["n"] == 0 and none["up"]["n"] == none["down"]["n"] == 0


def test_summarize_rejects_lists_of_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        summarize([1.0], [1.0, 1.0], [0.0], [0.0], ["answer"])
