"""Post-training fixtures: a tiny verifiable task set ("What is a + b?" -> "The answer is c.") on disk.

The reward functions used by the tests live in ``posttrain_helpers.py`` next to this file
(importable by name: this folder is put on sys.path).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from posttrain_helpers import addition_rows, write_jsonl  # noqa: E402


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory) -> Path:
    """sft.jsonl (prompt/response/kind/answer), rl.jsonl and eval.jsonl (prompt/answer/kind)."""
    d = tmp_path_factory.mktemp("tasks")
    write_jsonl(d / "sft.jsonl", addition_rows(32, seed=0))
    write_jsonl(d / "rl.jsonl", [{k: r[k] for k in ("prompt", "answer", "kind")} for r in addition_rows(16, 1)])
    write_jsonl(d / "eval.jsonl", [{k: r[k] for k in ("prompt", "answer", "kind")} for r in addition_rows(8, 2)])
    return d
