"""Batched generation from a chat model, reward functions by name, and held-out reward evaluation.

    from remit.posttrain.generate import evaluate_reward
    evaluate_reward("runs/x/grpo", "runs/x/world/eval.jsonl", "world", n=64, max_new_tokens=48)  # -> 0.41

Completions are handed to reward functions exactly as TRL's GRPOTrainer hands them for a
conversational dataset (``[{"role": "assistant", "content": text}]``), with the data file's other
columns (``answer``, ``kind``, ...) as keyword arguments, so a reward scores the same text here,
in DPO pair building and during GRPO.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from remit.errors import ConfigError, RemitError
from remit.models import load_model, load_tokenizer
from remit.posttrain.data import RL_FIELDS, columns_of, read_rows, user_turn
from remit.rewards import get_reward

RewardFn = Callable[..., list]


def resolve_reward(name: str) -> RewardFn:
    """A reward function: a name known to ``remit.rewards`` or ``package.module:function``."""
    if ":" in name:
        mod, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"rewards: cannot import reward '{name}' ({e})") from None
        except Exception as e:  # the module itself raised (or has a syntax error) on import
            raise ConfigError(f"rewards: importing '{mod}' for reward '{name}' failed: {type(e).__name__}: {e}") from None
        if not callable(fn) or isinstance(fn, type):
            raise ConfigError(f"rewards: '{name}' is a {type(fn).__name__}, not a reward function "
                              f"(fn(prompts, completions, **columns) -> list of floats)")
        return fn
    try:
        return get_reward(name)
    except KeyError as e:
        raise ConfigError(f"rewards: unknown reward '{name}' ({e})") from None


def check_reward_weights(rewards: Sequence[str], weights: Sequence[float] | None) -> None:
    """``reward_weights`` gives one weight per name of ``rewards`` (None: every weight 1.0).

    The one check of the DPO and GRPO configs' ``validate`` and of :func:`weighted_reward`.
    """
    if weights is not None and len(weights) != len(rewards):
        raise ConfigError(f"reward_weights has {len(weights)} values but rewards has {len(rewards)} "
                          f"({list(rewards)})")


def weighted_reward(names: Sequence[str] | str, weights: Sequence[float] | None = None) -> RewardFn:
    """One reward function: the weighted sum of ``names`` (None scores count as 0)."""
    names = [names] if isinstance(names, str) else list(names)
    weights = list(weights) if weights else [1.0] * len(names)
    check_reward_weights(names, weights)
    fns = [resolve_reward(n) for n in names]

    def reward(prompts, completions, **columns) -> list[float]:
        total = [0.0] * len(completions)
        for name, fn, w in zip(names, fns, weights):
            for i, r in enumerate(_call(name, fn, prompts, completions, columns)):
                total[i] += 0.0 if r is None else w * float(r)
        return total

    reward.__name__ = "+".join(names)
    return reward


def _call(name: str, fn: RewardFn, prompts, completions, columns: dict[str, Any]) -> list:
    """``fn``'s scores, checked: one number (or None) per completion, else a one-line error naming the reward."""
    shape = "fn(prompts, completions, **columns) -> one float (or None) per completion"
    try:
        out = fn(prompts=prompts, completions=completions, **columns)
    except TypeError as e:
        raise ConfigError(f"rewards: '{name}' cannot be called as a reward ({e}); a reward is {shape}") from None
    if isinstance(out, (str, bytes)) or not hasattr(out, "__len__") or len(out) != len(completions):
        got = f"{len(out)} values" if hasattr(out, "__len__") and not isinstance(out, (str, bytes)) else \
            f"a {type(out).__name__}"
        raise ConfigError(f"rewards: '{name}' returned {got} for {len(completions)} completions; a reward is {shape}")
    for r in out:
        try:
            _ = None if r is None else float(r)
        except (TypeError, ValueError):
            raise ConfigError(f"rewards: '{name}' returned {r!r} ({type(r).__name__}), not a number; "
                              f"a reward is {shape}") from None
    return list(out)


def check_reward(reward: RewardFn, rows: list[dict[str, Any]], where: str) -> None:
    """Call ``reward`` once on the first row (empty completion) so that a missing column fails before training."""
    try:
        score(reward, rows[:1], [[""]])
    except RemitError as e:
        raise type(e)(f"{where}: {e}") from None


def score(reward: RewardFn, rows: list[dict[str, Any]], completions: list[list[str]]) -> list[list[float]]:
    """Rewards of ``completions[i][j]`` (the j-th sample for ``rows[i]``), shaped like ``completions``."""
    flat_rows = [r for r, cs in zip(rows, completions) for _ in cs]
    flat = [c for cs in completions for c in cs]
    if not flat:
        return [[] for _ in rows]
    values = reward(prompts=[user_turn(r["prompt"]) for r in flat_rows],
                    completions=[[{"role": "assistant", "content": c}] for c in flat], **columns_of(flat_rows))
    out, k = [], 0
    for cs in completions:
        out.append([0.0 if v is None else float(v) for v in values[k:k + len(cs)]])
        k += len(cs)
    return out


def sample(model, tokenizer, prompts: list[str], *, num_samples: int = 1, max_new_tokens: int = 48,
           do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
           batch_size: int = 64, seed: int = 0) -> list[list[str]]:
    """``num_samples`` completions per prompt (chat template, left padding, batched ``model.generate``).

    Greedy when ``do_sample`` is False. ``batch_size`` counts generated sequences. A completion
    stops at eos (not included); special tokens are dropped from the text.
    """
    import torch  # not at the top: the stage modules import this module, and `remit sft --help` stays torch-free

    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    device = next(model.parameters()).device
    encoded = [_prompt_ids(tokenizer, p) for p in prompts]
    per_batch = max(1, batch_size // num_samples)
    out: list[list[str]] = []
    was_training = model.training
    model.eval()
    gen_kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=pad,
                                      eos_token_id=eos, num_return_sequences=num_samples)
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k)
    else:
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(encoded), per_batch):
                chunk = encoded[start:start + per_batch]
                width = max(len(ids) for ids in chunk)
                input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk], device=device)
                mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=device)
                gen = model.generate(input_ids=input_ids, attention_mask=mask, **gen_kwargs)[:, width:].tolist()
                for i in range(len(chunk)):
                    out.append([_decode(tokenizer, g, eos) for g in gen[i * num_samples:(i + 1) * num_samples]])
    finally:
        model.train(was_training)
    return out


def _prompt_ids(tokenizer, prompt: str) -> list[int]:
    enc = tokenizer.apply_chat_template(user_turn(prompt), add_generation_prompt=True, tokenize=True,
                                        return_dict=True)
    ids = enc["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = getattr(model.generation_config, "eos_token_id", None)
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.insert(0, tokenizer.eos_token_id)
    return ids


def _decode(tokenizer, ids: list[int], eos: list[int]) -> str:
    for k, t in enumerate(ids):
        if t in eos:
            ids = ids[:k]
            break
    return tokenizer.decode(ids, skip_special_tokens=True)


def evaluate_rows(model, tokenizer, rows: list[dict[str, Any]], reward: RewardFn | str | Sequence[str], *,
                  max_new_tokens: int = 48, batch_size: int = 64) -> list[float]:
    """Greedy completion of every row's prompt, scored by ``reward`` (one value per row)."""
    fn = reward if callable(reward) else weighted_reward(reward)
    completions = sample(model, tokenizer, [r["prompt"] for r in rows], num_samples=1,
                         max_new_tokens=max_new_tokens, do_sample=False, batch_size=batch_size)
    return [s[0] for s in score(fn, rows, completions)]


def evaluate_reward(model_dir: str | Path, prompts_file: str | Path, reward: RewardFn | str | Sequence[str],
                    n: int = 64, max_new_tokens: int = 48, *, device: str | None = None,
                    batch_size: int = 64) -> float:
    """Mean reward of greedy completions for the first ``n`` prompts of ``prompts_file``."""
    rows = read_rows(prompts_file, required=RL_FIELDS, limit=n)
    tokenizer = load_tokenizer(str(model_dir))
    model = load_model(str(model_dir), device=device)
    values = evaluate_rows(model, tokenizer, rows, reward, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return sum(values) / len(values)
