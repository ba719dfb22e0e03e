"""``code_reward``: 1.0 when the completion's code passes the task's tests in the sandbox.

Columns (HumanEval or MBPP style, one value per completion):
- HumanEval: ``test`` (defines ``check(candidate)``) and ``entry_point``; if the completion
  does not define the entry point itself (it continues the prompt), the prompt (or a
  ``code_prompt`` column) is put in front of it.
- MBPP: ``test_list`` (assert lines) and optionally ``test_setup_code``; or ``test`` holding
  plain asserts.

The code is the last fenced ```python block of the completion, or the whole completion.
Tests run in :func:`remit.sandbox.run_tests`; any failure (assert, exception, timeout,
memory, blocked call) gives 0.0 with the sandbox's reason.
"""

from __future__ import annotations

import os
import re
from typing import Any

from remit.rewards.base import Scored, prompt_text, trl_reward
from remit.sandbox import require, run_tests

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
CODE_TIMEOUT_S = 10.0


def extract_code(text: str) -> str:
    """The last fenced code block (```python ... ```), else the whole text."""
    blocks = _FENCE.findall(text)
    if blocks:
        return blocks[-1]
    if "```" in text:  # an unterminated fence: keep what follows it
        return text.split("```", 1)[1].split("\n", 1)[-1]
    return text


def build_program(completion: str, prompt: Any, row: dict[str, Any]) -> tuple[str, str, str | None]:
    """(program, test code, entry point) for one completion."""
    code = extract_code(completion)
    entry = row.get("entry_point")
    if entry and not re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        head = row.get("code_prompt") or prompt_text(prompt)
        code = f"{head}{code}"
    tests = row.get("test_list")
    if tests:
        test_code = "\n".join([row.get("test_setup_code") or ""] + list(tests))
    else:
        test_code = row.get("test") or ""
    return code, test_code, entry if "def check(" in test_code else None


def score_code(completion: str, prompt: Any, row: dict[str, Any]) -> Scored:
    code, test_code, entry = build_program(completion, prompt, row)
    if not test_code.strip():
        return Scored(0.0, "no tests (column 'test' or 'test_list')")
    if not code.strip():
        return Scored(0.0, "empty completion")
    require()  # refuses (one line) where the sandbox's kernel layers are missing, unless opted out by config
    r = run_tests(code, test_code, entry_point=entry, timeout_s=float(row.get("timeout_s") or CODE_TIMEOUT_S))
    return Scored(1.0, "tests passed") if r.ok else Scored(0.0, f"sandbox {r.detail}"[:300])


# Each test run is a subprocess: overlap a few of them.
code_reward = trl_reward(score_code, "code_reward", workers=max(1, min(4, os.cpu_count() or 1)))
