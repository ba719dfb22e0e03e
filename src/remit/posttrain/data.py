"""Read and check post-training data files (JSON lines), and turn rows into TRL's conversational format.

    rows = read_rows("runs/x/world/sft.jsonl", required=("prompt", "response"))
    ds = sft_dataset(rows)          # {"messages": [user, assistant]} for assistant-only loss
    ds = prompt_dataset(rows)       # {"prompt": [user], "answer": ..., <other columns>} for GRPO

Every problem (missing or empty file, a line that is not a JSON object, a missing or empty
field) is a :class:`DataError` naming the file, the line and the field, raised before any
model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remit.errors import DataError

SFT_FIELDS = ("prompt", "response")
RL_FIELDS = ("prompt", "answer")


def read_rows(path: str | Path, *, required: tuple[str, ...], limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` file; each must be an object with non-empty ``required`` fields.

    Values of required fields are returned as strings (a numeric ``answer`` becomes ``"42"``).
    Other fields are kept; a field missing from some rows is filled with ``""`` so that every
    row has the same columns (datasets needs that).
    """
    p = Path(path)
    if not str(path):
        raise DataError(f"no data file given (the stage's `data` key is empty; fields needed: {', '.join(required)})")
    if not p.is_file():
        raise DataError(f"{p}: data file not found")
    rows: list[dict[str, Any]] = []
    with open(p, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{p}:{lineno}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                                f"re-encode the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{p}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{p}:{lineno}: expected a JSON object with fields {', '.join(required)}, "
                                f"got {type(obj).__name__}")
            for key in required:
                if key not in obj:
                    raise DataError(f"{p}:{lineno}: missing field '{key}' (required: {', '.join(required)})")
                val = obj[key]
                if isinstance(val, bool) or not isinstance(val, (str, int, float)):
                    raise DataError(f"{p}:{lineno}: field '{key}' must be a string, got {type(val).__name__}")
                val = str(val)
                if not val.strip():
                    raise DataError(f"{p}:{lineno}: field '{key}' is empty")
                obj[key] = val
            rows.append(obj)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise DataError(f"{p}: no rows (the file is empty)")
    columns = {k for r in rows for k in r}
    for r in rows:
        for k in columns:
            r.setdefault(k, "")
    return rows


def user_turn(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def sft_dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` with one ``messages`` column: a row's own ``messages`` (a chat source), else its
    user prompt and assistant response."""
    from datasets import Dataset

    return Dataset.from_list([
        {"messages": [{"role": m["role"], "content": m["content"]} for m in r["messages"]]} if "messages" in r else
        {"messages": [*user_turn(r["prompt"]), {"role": "assistant", "content": r["response"]}]} for r in rows
    ])


def prompt_dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` with a conversational ``prompt`` plus the rows' other columns (answer, kind, ...).

    The other columns reach the reward functions as keyword arguments (TRL passes them through).
    """
    from datasets import Dataset

    return Dataset.from_list([{**extra_columns(r), "prompt": user_turn(r["prompt"])} for r in rows])


def extra_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The columns of a row other than the prompt/response texts (what reward functions receive)."""
    return {k: v for k, v in row.items() if k not in ("prompt", "response", "completion")}


def columns_of(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise view of ``extra_columns`` (the ``**columns`` of a TRL reward call)."""
    keys = list(extra_columns(rows[0])) if rows else []
    return {k: [r.get(k, "") for r in rows] for k in keys}
