"""Shared plumbing of the reward functions: TRL's call convention and per-example reasons.

TRL's GRPOTrainer calls ``fn(prompts=..., completions=..., **columns)`` where completions are
strings or conversations (lists of ``{"role", "content"}``) and every other dataset column
arrives as a list with one value per completion. Each reward here is written once as a
per-example scorer ``score(completion, prompt, row) -> Scored(value, reason)`` and wrapped
by :func:`trl_reward` into that convention.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from remit.errors import DataError


@dataclass(frozen=True)
class Scored:
    value: float
    reason: str


Scorer = Callable[[str, Any, dict[str, Any]], Scored]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in msgs if m.get("role", "assistant") == "assistant"]
        return completion_text((assistant or msgs)[-1]) if (assistant or msgs) else ""
    return "" if completion is None else str(completion)


def prompt_text(prompt: Any) -> str:
    """The text of a prompt: a string, or the last user message of a conversation."""
    if isinstance(prompt, (list, tuple)):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1].get("content") or "") if users else ""
    return "" if prompt is None else str(prompt)


# Keyword arguments TRL adds that are not dataset columns.
_NOT_COLUMNS = {"trainer_state", "completion_ids", "log_extra", "log_metric", "environments"}


def rows(n: int, columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn column lists (one value per completion) into one dict per completion."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, values in columns.items():
        if key in _NOT_COLUMNS or values is None:
            continue
        if not isinstance(values, (list, tuple)) or len(values) != n:
            got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise DataError(f"reward column '{key}' must be a list with one value per completion ({n}), got {got}")
        for i, v in enumerate(values):
            out[i][key] = v
    return out


def score_all(scorer: Scorer, prompts: list[Any] | None, completions: list[Any], columns: dict[str, Any],
              workers: int = 1) -> list[Scored]:
    """Score every completion; ``workers`` > 1 overlaps scorers that wait on subprocesses (the sandbox)."""
    prompts = list(prompts) if prompts is not None else [None] * len(completions)
    if len(prompts) != len(completions):
        raise DataError(f"reward: {len(prompts)} prompts for {len(completions)} completions")
    args = [(completion_text(c), p, r) for c, p, r in zip(completions, prompts, rows(len(completions), columns))]
    if workers <= 1 or len(args) <= 1:
        return [scorer(*a) for a in args]
    with ThreadPoolExecutor(min(workers, len(args))) as pool:
        return list(pool.map(lambda a: scorer(*a), args))


def trl_reward(scorer: Scorer, name: str, workers: int = 1) -> Callable[..., list[float]]:
    """Wrap a per-example scorer into TRL's ``fn(prompts, completions, **columns) -> list[float]``."""

    @functools.wraps(scorer)
    def reward(prompts=None, completions=None, **columns) -> list[float]:
        if completions is None:
            raise DataError(f"{name}: no completions given")
        return [s.value for s in score_all(scorer, prompts, completions, columns, workers)]

    reward.__name__ = reward.__qualname__ = name  # TRL logs rewards under the function's name
    reward.scorer = scorer  # type: ignore[attr-defined]
    reward.workers = workers  # type: ignore[attr-defined]
    return reward


def need(row: dict[str, Any], key: str, reward: str) -> Any:
    if key not in row:
        raise DataError(f"{reward} needs a dataset column '{key}' (got columns: {', '.join(sorted(row)) or 'none'})")
    return row[key]
