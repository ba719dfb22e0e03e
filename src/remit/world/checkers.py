"""Answer extraction and checking for the world's task kinds.

Every worked solution ends with ``The answer is X.``; a completion is scored by extracting
the last such ``X`` and comparing it with the gold answer: numerically for the numeric
kinds (``arith``, ``word``, ``program``), case-insensitively for names (``logic``).

    extract_answer("3 + 4 = 7. The answer is 7.")   # -> "7"
    check_answer("arith", "... The answer is 7.", "7")  # -> True
"""

from __future__ import annotations

import re

from remit.world.tasks import ANSWER_TYPE

_ANSWER_RE = re.compile(r"the answer is[:\s]*\**\s*([^\n]*?)\s*\**\s*(?:\.\s*)?$", re.IGNORECASE | re.MULTILINE)
_NUM_RE = re.compile(r"^[-+]?\$?\s*(\d[\d,]*(?:\.\d+)?|\.\d+)$")


def extract_answer(text: str) -> str | None:
    """The ``X`` of the last ``The answer is X.`` line in ``text`` (None if there is none)."""
    if not isinstance(text, str):
        return None
    matches = _ANSWER_RE.findall(text)
    if not matches:
        return None
    ans = matches[-1].strip().rstrip(".").strip()
    return ans or None


def parse_number(text: str) -> float | None:
    """``"1,234"``, ``"-5"``, ``"$12"``, ``"3.50"`` -> float; anything else -> None."""
    s = text.strip()
    m = _NUM_RE.match(s)
    if m is None:
        return None
    sign = -1.0 if s.startswith("-") else 1.0
    try:
        return sign * float(m.group(1).replace(",", ""))
    except ValueError:
        return None


def answers_match(kind: str, predicted: str, answer: str) -> bool:
    """Compare an extracted answer with the gold one according to the kind's answer type."""
    if ANSWER_TYPE.get(kind, "number") == "number":
        a, b = parse_number(predicted), parse_number(str(answer))
        if a is not None and b is not None:
            return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return predicted.strip().strip("\"'").lower() == str(answer).strip().lower()


def check_answer(kind: str, completion: str, answer: str) -> bool:
    """True if ``completion`` ends its reasoning with the right ``The answer is X.``."""
    predicted = extract_answer(completion)
    return predicted is not None and answers_match(kind, predicted, answer)


def has_answer_format(completion: str) -> bool:
    """True if the completion's last non-empty line ends with ``The answer is X.``."""
    if not isinstance(completion, str):
        return False
    lines = [ln for ln in completion.strip().splitlines() if ln.strip()]
    return bool(lines) and re.search(r"the answer is\s+\S.*\.\s*$", lines[-1], re.IGNORECASE) is not None
