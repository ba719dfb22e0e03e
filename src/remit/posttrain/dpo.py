"""On-policy DPO with TRL's DPOTrainer: preference pairs sampled from the model itself and verified.

    remit dpo model=runs/x/sft data=runs/x/world/rl.jsonl out=runs/x/dpo [pairs_per_prompt=2 ...]

For each of the first ``limit`` prompts (rows ``{"prompt", "answer", ...}``) the input model
samples ``samples_per_prompt`` completions (batched ``model.generate``); the reward functions
score them; a completion scoring ``>= correct_threshold`` is "correct". Up to ``pairs_per_prompt``
(correct, incorrect) pairs are taken per prompt; prompts whose samples are all correct or all
incorrect give no pair (no contrast). The counts go into the manifest (``pairs``).

With fewer than ``min_pairs`` pairs DPO cannot run: ``on_no_pairs=skip`` (default) says so and
copies the input model forward unchanged, recording ``skipped: true`` and the reason in the
manifest; ``on_no_pairs=error`` raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_choice, check_range
from remit.errors import TrainingError
from remit.midtrain.distributed import broadcast_object
from remit.models import load_model
from remit.posttrain.common import MASTER_DTYPE, PosttrainStage, StageConfig, common_values, say, trl_args
from remit.posttrain.data import RL_FIELDS, read_rows, user_turn
from remit.posttrain.generate import check_reward, check_reward_weights, sample, score, weighted_reward
from remit.utils.lock import locks_out_dir

STAGE = "dpo"


@dataclass
class DPOStageConfig(StageConfig):
    learning_rate: float = 5e-5
    max_steps: int = 20
    batch_size: int = 8
    limit: int | None = 64  # prompts to sample from
    beta: float = 0.1
    samples_per_prompt: int = 8
    pairs_per_prompt: int = 2
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 56
    gen_batch_size: int = 256  # sequences per generate() call
    rewards: list[str] = field(default_factory=lambda: ["world"])
    reward_weights: list[float] | None = None
    correct_threshold: float = 0.5
    min_pairs: int = 1
    on_no_pairs: str = "skip"  # skip | error

    def validate(self) -> None:
        super().validate()
        check_range("beta", self.beta, lo=0.0, lo_open=True)
        check_range("samples_per_prompt", self.samples_per_prompt, lo=2)
        check_range("pairs_per_prompt", self.pairs_per_prompt, lo=1)
        check_range("temperature", self.temperature, lo=0.0, lo_open=True)
        check_range("top_p", self.top_p, lo=0.0, hi=1.0, lo_open=True)
        check_range("max_new_tokens", self.max_new_tokens, lo=1)
        check_range("gen_batch_size", self.gen_batch_size, lo=1)
        check_range("min_pairs", self.min_pairs, lo=1)
        check_choice("on_no_pairs", self.on_no_pairs, ("skip", "error"))
        check_reward_weights(self.rewards, self.reward_weights)


def build_pairs(rows: list[dict[str, Any]], completions: list[list[str]], rewards: list[list[float]], *,
                pairs_per_prompt: int, correct_threshold: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(correct, incorrect) pairs per prompt, and counts.

    Duplicate texts are merged first. Pairs are taken in a fixed order over the grid of
    (correct i, incorrect j), by ``max(i, j)`` then ``i``, ``j``, so that the first pairs use
    different samples: ``min(pairs_per_prompt, n_correct * n_incorrect)`` pairs per prompt.
    """
    pairs: list[dict[str, Any]] = []
    stats = {"prompts": len(rows), "samples": 0, "correct_samples": 0, "prompts_with_pairs": 0,
             "prompts_all_correct": 0, "prompts_all_incorrect": 0, "pairs": 0}
    for row, texts, scores in zip(rows, completions, rewards, strict=True):
        good: dict[str, float] = {}
        bad: dict[str, float] = {}
        for text, r in zip(texts, scores, strict=True):
            (good if r >= correct_threshold else bad).setdefault(text, r)
        stats["samples"] += len(texts)
        stats["correct_samples"] += sum(r >= correct_threshold for r in scores)
        if not bad:
            stats["prompts_all_correct"] += 1
        if not good:
            stats["prompts_all_incorrect"] += 1
        if not good or not bad:
            continue
        g, b = list(good.items()), list(bad.items())
        grid = sorted(((i, j) for i in range(len(g)) for j in range(len(b))), key=lambda ij: (max(ij), ij))
        for i, j in grid[:pairs_per_prompt]:
            pairs.append({"prompt": row["prompt"], "chosen": g[i][0], "rejected": b[j][0],
                          "chosen_reward": g[i][1], "rejected_reward": b[j][1]})
        stats["prompts_with_pairs"] += 1
    stats["pairs"] = len(pairs)
    stats["sample_accuracy"] = stats["correct_samples"] / max(1, stats["samples"])
    return pairs, stats


def make_pairs(rows: list[dict[str, Any]], sample_fn: Callable[[list[str], int], list[list[str]]],
               reward_fn: Callable[..., list], cfg: DPOStageConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sample with ``sample_fn(prompts, k)``, score with ``reward_fn``, then :func:`build_pairs`."""
    completions = sample_fn([r["prompt"] for r in rows], cfg.samples_per_prompt)
    if len(completions) != len(rows) or any(len(c) != cfg.samples_per_prompt for c in completions):
        raise RuntimeError(f"sampler returned {len(completions)} groups for {len(rows)} prompts")
    rewards = score(reward_fn, rows, completions)
    return build_pairs(rows, completions, rewards, pairs_per_prompt=cfg.pairs_per_prompt,
                       correct_threshold=cfg.correct_threshold)


def pair_dataset(pairs: list[dict[str, Any]]):
    """Conversational preference dataset for DPOTrainer."""
    from datasets import Dataset  # heavy: only when DPO trains

    return Dataset.from_list([{
        "prompt": user_turn(p["prompt"]),
        "chosen": [{"role": "assistant", "content": p["chosen"]}],
        "rejected": [{"role": "assistant", "content": p["rejected"]}],
    } for p in pairs])


class DPOStage(PosttrainStage):
    name = STAGE
    cfg: DPOStageConfig

    def read(self) -> None:
        cfg = self.cfg
        self.rows = read_rows(cfg.data, required=RL_FIELDS, limit=cfg.limit)
        self.reward_fn = weighted_reward(cfg.rewards, cfg.reward_weights)
        check_reward(self.reward_fn, self.rows, cfg.data)

    def prepare(self, model, tokenizer) -> dict[str, Any] | None:
        """Sample and score the pairs; too few: raise (``on_no_pairs=error``) or skip training."""
        cfg = self.cfg

        def sample_fn(prompts: list[str], k: int) -> list[list[str]]:
            return sample(model, tokenizer, prompts, num_samples=k, max_new_tokens=cfg.max_new_tokens,
                          do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p,
                          batch_size=cfg.gen_batch_size, seed=cfg.seed)

        t0 = time.time()
        # rank 0 samples, every rank trains on its pairs (sampling on each would be N times the work, and
        # GPU kernels need not give every rank the same samples)
        self.pairs, stats = broadcast_object(make_pairs(self.rows, sample_fn, self.reward_fn, cfg)
                                             if self.world.is_main else None, self.world)
        stats["sampling_s"] = round(time.time() - t0, 2)
        self.stats = stats
        say(STAGE, f"built {stats['pairs']} pairs from {stats['prompts_with_pairs']}/{stats['prompts']} prompts "
                   f"(sample accuracy {stats['sample_accuracy']:.3f}, {stats['prompts_all_correct']} all correct, "
                   f"{stats['prompts_all_incorrect']} all incorrect)")
        if stats["pairs"] < cfg.min_pairs:
            reason = (f"only {stats['pairs']} preference pairs (min_pairs={cfg.min_pairs}): no prompt had both a "
                      f"correct and an incorrect sample among {cfg.samples_per_prompt}")
            if cfg.on_no_pairs == "error":
                raise TrainingError(f"dpo: {reason}; raise samples_per_prompt/limit or set on_no_pairs=skip")
            say(STAGE, f"SKIPPED: {reason}. Copying the input model forward unchanged (on_no_pairs=skip).")
            return {"pairs": stats, "skipped": True, "skip_reason": reason}
        # the policy's numerics (fp32 weights, TRL's autocast): identical models give log-ratio 0
        self.ref_model = load_model(cfg.model, dtype=MASTER_DTYPE, device=self.device)
        return None

    def build(self, model, tokenizer, scratch: Path) -> tuple[Any, str]:
        from trl import DPOConfig, DPOTrainer  # TRL is heavy: imported when a stage runs, not on `remit --help`

        cfg = self.cfg
        args = trl_args(DPOConfig, STAGE, {
            **common_values(cfg, self.device, scratch),
            "beta": cfg.beta,
            "max_length": cfg.max_length,
        }, cfg.trl)
        trainer = DPOTrainer(model=model, ref_model=self.ref_model, args=args,
                             train_dataset=pair_dataset(self.pairs), processing_class=tokenizer)
        return trainer, (f"{self.stats['pairs']} pairs, {cfg.max_steps} steps of {cfg.batch_size * cfg.grad_accum} "
                         f"on {self.device}")

    def extras(self, log_history: list[dict[str, Any]]) -> dict[str, Any]:
        return {"pairs": self.stats, "skipped": False}


@locks_out_dir("out", STAGE, main_only=True)
def run(cfg: DPOStageConfig) -> Path:
    return DPOStage(cfg).run()
