"""Rewards for the real-model lane's one-step DPO/GRPO (importable as ``real_rewards:NAME``)."""

from __future__ import annotations


def _text(completion) -> str:
    return completion[-1]["content"] if isinstance(completion, list) else completion


def even_length(prompts, completions, **_) -> list[float]:
    """1.0 for completions of even character length: a reward spread for any model."""
    return [1.0 if len(_text(c)) % 2 == 0 else 0.0 for c in completions]
