"""``world_reward``, ``format_reward``, ``auto_reward`` and the name -> reward registry.

    from remit.rewards import get_reward, reward_with_reasons
    fn = get_reward("world")                       # TRL: GRPOTrainer(reward_funcs=[fn], ...)
    fn(prompts, completions, kind=["arith"], answer=["7"])         # -> [1.0] or [0.0]
    reward_with_reasons("world", prompts, completions, **columns)   # -> [Scored(value, reason)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from remit.errors import ConfigError
from remit.rewards.base import Scored, need, score_all, trl_reward
from remit.rewards.code_rewards import code_reward, score_code
from remit.rewards.math_rewards import math_reward, score_math
from remit.world.checkers import answers_match, extract_answer, has_answer_format
from remit.world.tasks import KINDS


def score_world(completion: str, prompt: Any, row: dict[str, Any]) -> Scored:
    kind, answer = need(row, "kind", "world_reward"), need(row, "answer", "world_reward")
    if kind not in KINDS:
        return Scored(0.0, f"unknown world kind '{kind}' (accepted: {', '.join(KINDS)})")
    predicted = extract_answer(completion)
    if predicted is None:
        return Scored(0.0, "no 'The answer is X.' line")
    if answers_match(kind, predicted, str(answer)):
        return Scored(1.0, f"{kind}: {predicted} == {answer}")
    return Scored(0.0, f"{kind}: {predicted} != {answer}")


def score_format(completion: str, prompt: Any, row: dict[str, Any]) -> Scored:
    if has_answer_format(completion):
        return Scored(1.0, "ends with 'The answer is X.'")
    return Scored(0.0, "does not end with 'The answer is X.'")


def score_auto(completion: str, prompt: Any, row: dict[str, Any]) -> Scored:
    """Code tests when the row has them, the world's checker for world kinds, math-verify otherwise."""
    if row.get("test") or row.get("test_list"):
        return score_code(completion, prompt, row)
    if row.get("kind") in KINDS:
        return score_world(completion, prompt, row)
    return score_math(completion, prompt, row)


world_reward = trl_reward(score_world, "world_reward")
format_reward = trl_reward(score_format, "format_reward")
# Sequential: math-verify's timeout uses SIGALRM, which only works in the main thread.
auto_reward = trl_reward(score_auto, "auto_reward")

REWARDS: dict[str, Callable[..., list[float]]] = {
    "math": math_reward, "code": code_reward, "world": world_reward, "format": format_reward, "auto": auto_reward,
}


def get_reward(name: str) -> Callable[..., list[float]]:
    """The TRL reward function registered as ``name`` (``math``, ``code``, ``world``, ``format``, ``auto``)."""
    key = name.removesuffix("_reward")
    if key not in REWARDS:
        raise ConfigError(f"unknown reward '{name}'. Accepted values: {', '.join(REWARDS)}.")
    return REWARDS[key]


def reward_with_reasons(name: str, prompts: list[Any] | None, completions: list[Any], **columns) -> list[Scored]:
    """Like ``get_reward(name)(prompts, completions, **columns)`` but each value comes with its reason."""
    fn = get_reward(name)
    return score_all(fn.scorer, prompts, completions, columns, fn.workers)  # type: ignore[attr-defined]
