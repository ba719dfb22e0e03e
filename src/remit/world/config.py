"""The world stage's config: how many rows of each split, which task kinds, how hard, how written.

    from remit.world.config import WorldConfig   # also importable from remit.world.stage and remit.world
    cfg = load_config(WorldConfig, None, ["kinds=arith,logic", "difficulty=2"])

Kept apart from ``stage.py`` so that ``generate.py`` (which reads it) and ``stage.py`` (which runs
``generate_world``) do not import each other.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

from remit.config import ConfigError, check_range
from remit.world.tasks import KINDS, make_task


@dataclass
class WorldConfig:
    out_dir: str = "runs/world"
    seed: int = 0
    # Defaults give about 2.3M pretrain and 0.4M midtrain tokens (512-token BPE, one token per digit).
    n_pretrain_docs: int = 16000
    n_midtrain_docs: int = 2150
    n_sft: int = 4000
    n_rl: int = 2000
    n_eval: int = 500  # per kind
    difficulty: int = 3  # 1 (small numbers, 1-2 steps) .. 3 (larger numbers, more steps; chain: 1-4 steps)
    kinds: list[str] = field(default_factory=lambda: ["chain"])  # the classic world: [arith, word, program, logic]
    direct_frac: float = 0.7  # share of training solutions written as the answer alone (no steps)
    pretrain_reasoning_frac: float = 0.8  # share of pretrain documents that are solved tasks
    midtrain_general_frac: float = 0.25  # share of midtrain documents that are general text
    qa_per_doc: list[int] = field(default_factory=lambda: [2, 4])  # solved tasks per pretrain document (min, max)
    qa_per_doc_midtrain: list[int] = field(default_factory=lambda: [3, 6])
    general_doc_chars: int = 500  # a general document grows by paragraphs until it has this many characters
    # Share of the solved-task documents of midtrain.jsonl written as one-turn chats in the post-training format
    # (remit's chat template), as real mid-training mixes hold instruction data. Left out of the config hash
    # while 0, so worlds made before the key existed are reused.
    midtrain_chat_frac: float = field(default=0.0, metadata={"omit_if_empty": True})
    # The calibrated world's chain keys (docs/world.md; all left out of the config hash while empty):
    # chain_steps = [min, max] steps of a chain task (empty: 1 to difficulty + 1); hard_step_frac = the chance
    # that a step of a mid-training, SFT, RL or held-out task is hard (a two-digit operand with a carry or
    # borrow, or x2 / x3 of the running value); pretrain_hard_step_frac = the same in pre-training documents,
    # so that mid-training brings what pre-training rarely showed.
    chain_steps: list[int] = field(default_factory=list, metadata={"omit_if_empty": True})
    hard_step_frac: float = field(default=0.0, metadata={"omit_if_empty": True})
    pretrain_hard_step_frac: float = field(default=0.0, metadata={"omit_if_empty": True})
    # direct_frac of the SFT split alone (None: direct_frac): how often the SFT data shows the answer alone,
    # which sets how often the SFT model answers without the steps (the format lever GRPO pulls)
    sft_direct_frac: float | None = field(default=None, metadata={"omit_if_empty": True})
    # share of the solved-task PRE-training documents written as chats (as midtrain_chat_frac), so the
    # pre-annealing checkpoint already knows the post-training format
    pretrain_chat_frac: float = field(default=0.0, metadata={"omit_if_empty": True})
    # share of the worked chain solutions of the mid-training and SFT data with one arithmetic slip (a step off
    # by one, the rest of the chain from the wrong value; tasks.with_slip): what only the correctness reward
    # removes, so the RL model differs from the SFT model on the steps, not only on the answer format.
    # Pre-training, the RL prompts and the held-out answers stay clean.
    slip_frac: float = field(default=0.0, metadata={"omit_if_empty": True})

    def validate(self) -> None:
        for key in ("n_pretrain_docs", "n_midtrain_docs", "n_sft", "n_rl", "n_eval"):
            check_range(key, getattr(self, key), 0)
        check_range("difficulty", self.difficulty, 1, 3)
        check_range("pretrain_reasoning_frac", self.pretrain_reasoning_frac, 0.0, 1.0)
        check_range("midtrain_general_frac", self.midtrain_general_frac, 0.0, 1.0)
        check_range("general_doc_chars", self.general_doc_chars, 1)
        check_range("direct_frac", self.direct_frac, 0.0, 1.0)
        check_range("midtrain_chat_frac", self.midtrain_chat_frac, 0.0, 1.0)
        check_range("hard_step_frac", self.hard_step_frac, 0.0, 1.0)
        check_range("pretrain_hard_step_frac", self.pretrain_hard_step_frac, 0.0, 1.0)
        check_range("pretrain_chat_frac", self.pretrain_chat_frac, 0.0, 1.0)
        check_range("slip_frac", self.slip_frac, 0.0, 1.0)
        if self.sft_direct_frac is not None:
            check_range("sft_direct_frac", self.sft_direct_frac, 0.0, 1.0)
        if self.chain_steps and (len(self.chain_steps) != 2 or not 1 <= self.chain_steps[0] <= self.chain_steps[1]):
            raise ConfigError(f"chain_steps={self.chain_steps}: give [min, max] with 1 <= min <= max")
        chain_keys = [k for k in ("chain_steps", "hard_step_frac", "pretrain_hard_step_frac", "slip_frac")
                      if getattr(self, k)]
        if chain_keys and "chain" not in self.kinds:
            raise ConfigError(f"{chain_keys[0]}: a key of the chain kind, but kinds={self.kinds}; add chain to kinds")
        for key in ("qa_per_doc", "qa_per_doc_midtrain"):
            v = getattr(self, key)
            if len(v) != 2 or not 1 <= v[0] <= v[1]:
                raise ConfigError(f"{key}={v}: give [min, max] with 1 <= min <= max")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise ConfigError(f"kinds: unknown kind '{bad[0]}'. Accepted values: {', '.join(KINDS)}.")
        if len(set(self.kinds)) != len(self.kinds):
            raise ConfigError(f"kinds: {self.kinds} lists a kind twice")
        if not self.kinds:
            raise ConfigError(f"kinds: give at least one task kind (the SFT, RL and eval splits would be empty). "
                              f"Accepted values: {', '.join(KINDS)}.")
        for kind in self.kinds:
            found = _distinct_prompts(kind, self.difficulty, 2 * self.n_eval, **self.task_options(kind))
            if found < 2 * self.n_eval:
                raise ConfigError(f"n_eval={self.n_eval}: kind '{kind}' at difficulty {self.difficulty} has about "
                                  f"{found} distinct prompts, and at most half of them can be held out (the rest are "
                                  f"for training); lower n_eval to {found // 2} or raise difficulty")


    def task_options(self, kind: str, split: str = "tasks") -> dict:
        """``make_task``'s keyword options for ``kind`` in ``split`` (``pretrain`` or the task splits)."""
        if kind != "chain":
            return {}
        hard = self.pretrain_hard_step_frac if split == "pretrain" else self.hard_step_frac
        return {"steps": tuple(self.chain_steps) or None, "hard": hard}


@functools.cache
def _distinct_prompts(kind: str, difficulty: int, want: int, steps: tuple[int, int] | None = None,
                      hard: float = 0.0) -> int:
    """Distinct prompts of ``kind`` seen in up to 20 * ``want`` draws (stops at ``want``): a capacity check."""
    rng, seen = random.Random(f"capacity/{kind}/{difficulty}"), set()
    for _ in range(20 * want):
        seen.add(make_task(kind, rng, difficulty, steps=steps, hard=hard).prompt)
        if len(seen) >= want:
            break
    return len(seen)
