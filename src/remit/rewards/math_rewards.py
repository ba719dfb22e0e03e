"""``math_reward``: 1.0 when the completion's final answer equals the gold answer (math-verify).

The gold comes from the ``answer`` column (or ``solution``, MATH style). GSM8K golds
(``"... #### 42"``) keep only what follows ``####``; a MATH solution's ``\\boxed{..}`` is found
by math-verify. If math-verify finds no match, an exact numeric comparison of the
completion's ``The answer is X.`` / ``#### X`` / ``\\boxed{X}`` answer with a numeric gold is
the fallback (the synthetic world's format).

    math_reward(prompts, ["... The answer is 18."], answer=["... #### 18"])  # -> [1.0]
"""

from __future__ import annotations

import re
import threading
from typing import Any

from remit.rewards.base import Scored, trl_reward
from remit.world.checkers import extract_answer, parse_number

_HASHES = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")


def gold_text(gold: Any) -> str:
    """The gold answer as text: GSM8K's ``#### X`` -> ``X``; anything else unchanged."""
    s = str(gold).strip()
    m = _HASHES.search(s)
    return m.group(1).strip() if m else s


def final_answer(text: str) -> str | None:
    """The completion's stated final answer: ``The answer is X``, ``#### X`` or the last ``\\boxed{X}``."""
    m = _HASHES.search(text)
    if m:
        return m.group(1).splitlines()[0].strip()
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    return extract_answer(text)


def _verify(gold: str, text: str) -> tuple[bool | None, str, str]:
    """math-verify's verdict (None if it could not parse the gold), what it parsed from the completion
    and from the gold."""
    from math_verify import parse, verify  # heavy (sympy, ~0.4 s): only when a math reward is scored

    # math-verify times out with signal.alarm, which only works in the main thread.
    t = 5 if threading.current_thread() is threading.main_thread() else None
    gold_src = gold if ("$" in gold or "\\boxed" in gold or "\\(" in gold) else f"${gold}$"
    g = parse(gold_src, parsing_timeout=t)
    if not g:
        g = parse(gold, parsing_timeout=t)
    if not g:
        return None, "", gold
    stated = final_answer(text)
    # Parse the stated answer when there is one, so that numbers in the reasoning do not count.
    p = parse(f"${stated}$" if stated and "$" not in stated else stated, parsing_timeout=t) if stated else []
    if not p:
        p = parse(text, parsing_timeout=t)
    if not p:
        return False, "", str(g[-1])
    return bool(verify(g, p, timeout_seconds=t)), str(p[-1]), str(g[-1])


def score_math(completion: str, prompt: Any, row: dict[str, Any]) -> Scored:
    gold_raw = row.get("answer", row.get("solution"))
    if gold_raw is None or str(gold_raw).strip() == "":
        return Scored(0.0, "no gold answer (column 'answer' or 'solution')")
    gold = gold_text(gold_raw)
    if not completion.strip():
        return Scored(0.0, "empty completion")
    try:
        ok, parsed, gold_parsed = _verify(gold, completion)
    except Exception as e:  # math-verify/sympy failures must never stop training
        ok, parsed, gold_parsed = None, f"math-verify error: {type(e).__name__}", gold
    if ok:
        return Scored(1.0, f"math-verify: {parsed} == {gold_parsed}")
    stated = final_answer(completion)
    a, b = (parse_number(stated) if stated else None), parse_number(gold)
    if a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b)):
        return Scored(1.0, f"numeric: {stated} == {gold}")
    if stated is None and not parsed:
        return Scored(0.0, "no answer found in the completion")
    return Scored(0.0, f"wrong answer: {stated if stated is not None else parsed} != {gold_parsed}")


math_reward = trl_reward(score_math, "math_reward")
