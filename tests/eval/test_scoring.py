"""Scoring functions against closed forms and known answers; gold programs pass in the sandbox."""

from __future__ import annotations

import math

import pytest

from remit.eval import scoring
from remit.eval.data import _parse_piqa, _parse_qa, _parse_wino, round_robin


@pytest.fixture(autouse=True)
def _sandbox_policy():
    """The scoring logic is tested here, the sandbox's layers in tests/sandbox: run even where one is missing."""
    from remit.sandbox import configure

    configure(unenforced_ok=True)
    yield
    configure(unenforced_ok=False)


def test_pass_at_k_closed_forms():
    assert scoring.pass_at_k(10, 0, 1) == 0.0
    assert scoring.pass_at_k(10, 10, 5) == 1.0
    assert math.isclose(scoring.pass_at_k(10, 3, 1), 0.3)
    assert math.isclose(scoring.pass_at_k(5, 2, 2), 1 - math.comb(3, 2) / math.comb(5, 2))
    assert scoring.pass_at_k(4, 2, 3) == 1.0  # n - c < k: every draw of 3 holds a pass


def test_math_answers_via_math_verify():
    assert scoring.math_correct("The answer is $\\frac{1}{2}$", "$0.5$") == 1.0
    assert scoring.math_correct("$\\frac{2}{3}$", "$\\frac{1}{2}$") == 0.0
    assert scoring.boxed("so $\\boxed{\\frac{a}{b}}$.") == "\\frac{a}{b}"
    doc = {"answer": "She pays 3 * 6 = <<3*6=18>>18 dollars.\n#### 1,018"}
    assert scoring.gsm8k_results(doc, ["... so 1018 in all.\n#### 1,018"]) == {"exact_match": 1.0,
                                                                              "flexible_match": 1.0}
    assert scoring.gsm8k_results(doc, ["It is 1018 dollars."]) == {"exact_match": 0.0, "flexible_match": 1.0}
    sol = {"solution": "Thus $x = \\boxed{-\\frac{2}{3}}$."}
    ok = "Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct."
    assert scoring.math_results(sol, [ok]) == {"exact_match": 1.0}
    assert scoring.math_results(sol, [ok.replace("2}{3", "3}{2")]) == {"exact_match": 0.0}


def test_margin_and_accuracy():
    fn = scoring.mc_results(lambda d: ["a", "bbbb", "cc"], lambda d: d["g"], norm=True)
    out = fn({"g": 1}, [(-3.0, False), (-2.0, True), (-5.0, False)])
    assert out == {"acc": 1.0, "margin": 1.0, "acc_norm": 1.0}
    out = fn({"g": 2}, [(-3.0, False), (-2.0, True), (-5.0, False)])
    assert out["acc"] == 0.0 and out["margin"] == -3.0
    assert out["acc_norm"] == 0.0  # per char: -3, -0.5, -2.5


def test_gold_loss_bits_per_byte():
    class Tok:  # one token per character
        def encode(self, s):
            return list(s)

    fn = scoring.gold_loss_results(Tok(), lambda d: "Q: x\nA:", lambda d: "abc", " ", max_length=100)
    out = fn({}, [(-4 * math.log(2), False)])
    assert math.isclose(out["bpb"], 1.0)  # 4 bits over " abc" = 4 bytes
    assert math.isclose(out["token_loss"], math.log(2))


def test_instruction_form_parsers_and_round_robin():
    piqa = _parse_piqa({"instruction": "Please choose the correct solution to the question: Open a jar?\n\n"
                        "Solution1: twist it\n\nSolution2: eat it\n\nAnswer format: solution1/solution2",
                        "answer": "solution2"})
    assert piqa == {"goal": "Open a jar?", "sol1": "twist it", "sol2": "eat it", "label": 1}
    wino = _parse_wino({"instruction": "Please choose the correct answer to fill in the blank to complete the given "
                        "sentence: Sarah beat Maria so _ won.\n\nOption1: Sarah Option2: Maria Answer format: "
                        "option1/option2", "answer": "option1"})
    assert wino == {"sentence": "Sarah beat Maria so _ won.", "option1": "Sarah", "option2": "Maria", "answer": "1"}
    qa = _parse_qa({"instruction": "Please choose the correct answer to the question: Why: so?\n\nAnswer1: a "
                    "Answer2: b c Answer3: d\n\nAnswer format: answer1/answer2/answer3", "answer": "answer3"})
    assert qa == {"question": "Why: so?", "choices": ["a", "b c", "d"], "label": 2}
    rows = [{"s": s, "i": i} for s in "ab" for i in range(3)] + [{"s": "c", "i": 0}]
    assert [(r["s"], r["i"]) for r in round_robin(rows, "s")][:4] == [("a", 0), ("b", 0), ("c", 0), ("a", 1)]


def test_gold_code_passes_and_wrong_code_fails_in_sandbox(shared_data):
    if not (shared_data / "humaneval").is_dir():
        pytest.skip(f"shared data not found at {shared_data}")
    from remit.eval.data import load_docs

    he = load_docs("humaneval", shared_data)["test"][:3]
    mb = load_docs("mbpp", shared_data)["test"][:3]
    filt = scoring.code_filter(scoring.humaneval_program, timeout_s=10, memory_mb=1024, workers=2)
    assert filt([[d["canonical_solution"], "    return None\n"] for d in he], he) == [[True, False]] * 3
    filt = scoring.code_filter(scoring.mbpp_program, timeout_s=10, memory_mb=1024, workers=2)
    assert filt([[d["code"] + "\n[DONE]", "pass"] for d in mb], mb) == [[True, False]] * 3


def test_fit_target_cuts_long_gold_to_the_window(tiny_tokenizer):
    from remit.eval.scoring import fit_target

    short = fit_target(tiny_tokenizer, lambda d: d["t"], max_length=512)
    assert short({"t": "12 + 7 = 19."}) == "12 + 7 = 19."
    long_text = " ".join(["the cat sat on the mat"] * 40)
    cut = fit_target(tiny_tokenizer, lambda d: d["t"], max_length=32)({"t": long_text})
    assert long_text.startswith(cut) and len(tiny_tokenizer.encode(cut, add_special_tokens=False)) <= 32
