"""Verifiable rewards with TRL's signature ``fn(prompts, completions, **columns) -> list[float]``.

``math_reward`` (math-verify, GSM8K/MATH golds), ``code_reward`` (tests in :mod:`remit.sandbox`),
``world_reward`` (the embedded world's checkers), ``format_reward`` (ends with ``The answer is X.``),
``auto_reward`` (picks one per row). ``get_reward(name)`` looks them up; ``reward_with_reasons``
returns ``Scored(value, reason)`` per completion for logging.
"""

from remit.rewards.base import Scored, completion_text
from remit.rewards.code_rewards import code_reward, extract_code
from remit.rewards.math_rewards import math_reward
from remit.rewards.registry import REWARDS, auto_reward, format_reward, get_reward, reward_with_reasons, world_reward

__all__ = ["REWARDS", "Scored", "auto_reward", "code_reward", "completion_text", "extract_code", "format_reward",
           "get_reward", "math_reward", "reward_with_reasons", "world_reward"]
