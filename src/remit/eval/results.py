"""Turn lm-eval's logged samples into remit's results: ``results.json`` and ``results.md``.

Schema (docs/ARCHITECTURE.md): ``{"model", "suite", "tasks": {task: {metric: {"value", "stderr", "n"}}},
"per_example": {task: {metric: [..]}}}``. Every value is the mean of its per-example list (in
document order, so two runs on the same data pair up by index) and ``stderr`` the standard error
of that mean; lm-eval's companion tasks (``gsm8k:gold`` for bpb, ``humaneval:sampled`` for
pass@k) are folded into their benchmark's entry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from remit.errors import DataError

LOWER_IS_BETTER = ("bpb", "token_loss")


def summarize(values: list[float]) -> dict[str, float | int]:
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return {"value": mean, "stderr": math.sqrt(var / n) if n else float("nan"), "n": n}


def collect(samples: dict[str, list[dict[str, Any]]]) -> tuple[dict, dict]:
    """lm-eval ``results["samples"]`` -> (tasks, per_example), companions merged into their benchmark."""
    per_example: dict[str, dict[str, list[float]]] = {}
    for lm_task in sorted(samples):
        bench = lm_task.split(":")[0]
        rows = sorted(samples[lm_task], key=lambda s: s["doc_id"])
        for metric in rows[0]["metrics"] if rows else []:
            per_example.setdefault(bench, {})[metric] = [float(s[metric]) for s in rows]
    tasks = {t: {m: summarize(v) for m, v in ms.items()} for t, ms in per_example.items()}
    return tasks, per_example


def to_markdown(res: dict[str, Any]) -> str:
    lines = [f"# Eval: {res.get('suite', '')}", "", f"model: `{res.get('model', '')}`", "",
             "| task | metric | value | stderr | n |", "|---|---|---:|---:|---:|"]
    for task, metrics in res["tasks"].items():
        for m, s in metrics.items():
            arrow = " (lower is better)" if m in LOWER_IS_BETTER else ""
            lines.append(f"| {task} | {m}{arrow} | {s['value']:.4f} | {s['stderr']:.4f} | {s['n']} |")
    return "\n".join(lines) + "\n"


def load_results(path: str | Path) -> dict[str, Any]:
    """Read ``results.json`` (or a run folder holding one), checking the schema."""
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.is_file():
        raise DataError(f"no results.json found at {p}" + ("" if p.exists() else " (path does not exist)"))
    try:
        res = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{f} line {e.lineno}: invalid JSON ({e.msg})") from None
    for key in ("tasks", "per_example"):
        if not isinstance(res.get(key), dict):
            raise DataError(f"{f}: missing '{key}' (not a remit eval results file)")
    res["_path"] = str(f)
    return res
