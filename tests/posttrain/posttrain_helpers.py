"""Helpers for the post-training tests: reward functions (referenced as ``posttrain_helpers:NAME``), files.

TRL signature: ``fn(prompts, completions, **columns) -> list[float]``; completions are chats.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path


def _text(completion) -> str:
    return completion[-1]["content"] if isinstance(completion, list) else completion


def exact_answer(prompts, completions, answer, **_) -> list[float]:
    """1.0 when the completion ends with 'The answer is <answer>.'."""
    out = []
    for c, a in zip(completions, answer):
        m = re.findall(r"The answer is\s*(-?\d+)", _text(c))
        out.append(1.0 if m and m[-1] == str(a) else 0.0)
    return out


def even_length(prompts, completions, **_) -> list[float]:
    """1.0 for completions of even character length: gives contrast even for a random-init model."""
    return [1.0 if len(_text(c)) % 2 == 0 else 0.0 for c in completions]


def never(prompts, completions, **_) -> list[float]:
    return [0.0 for _ in completions]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def addition_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"prompt": f"What is {a} + {b}?", "response": f"{a} + {b} = {a + b}. The answer is {a + b}.",
                     "kind": "arith", "answer": str(a + b)})
    return rows
