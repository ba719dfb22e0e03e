"""RL with verifiable rewards: TRL's GRPOTrainer on prompts whose answers a reward function checks.

    remit grpo model=runs/x/dpo data=runs/x/world/rl.jsonl out=runs/x/grpo eval.data=runs/x/world/eval.jsonl

Rows ``{"prompt", "answer", ...}``; the prompt becomes a one-turn chat and every other column
(``answer``, ``kind``, ...) reaches the reward functions (``rewards``, names from
``remit.rewards`` or ``module:function``, weighted by ``reward_weights``). ``batch_size`` counts
PROMPTS per optimizer step; each gets ``num_generations`` sampled completions of at most
``max_completion_length`` tokens. With ``eval.data`` set, the mean reward of greedy completions
on the held-out prompts is measured before and after training and written to the manifest
(``eval.pre``, ``eval.post``). Generation uses vLLM on GPU when it is installed (``use_vllm``
unset), plain batched ``model.generate`` otherwise.

Measured at commit 0ecb976 (``benchmarks/grpo_quality.py``, an experiment script removed in issue #21:
``git show 4c9892f:benchmarks/grpo_quality.py``): a 1.09M-param Llama SFT'd 200 steps on 150
additions "What is a + b?" (a, b <= 20), GRPO on 150 other additions, greedy reward on 100 held-out
ones: T=0.7, lr 5e-5: 0.20 -> 0.23 (60 steps), 0.20 -> 0.28 (150 steps); T=1.0: 0.20 -> 0.18 (lr
5e-5), 0.13 (lr 1e-4), 0.02 (lr 5e-4). n=100, so one standard error is about 0.04.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_choice, check_range
from remit.errors import ConfigError
from remit.posttrain.common import PosttrainStage, StageConfig, common_values, trl_args
from remit.posttrain.data import RL_FIELDS, prompt_dataset, read_rows
from remit.posttrain.generate import check_reward, check_reward_weights, resolve_reward, weighted_reward
from remit.posttrain.launch import per_process
from remit.utils.integrations import has_vllm
from remit.utils.lock import locks_out_dir

STAGE = "grpo"


@dataclass
class GRPOStageConfig(StageConfig):
    # Measured on a ~1M Llama (see docs of this module): lr >= 5e-4 or temperature 1.0 LOWER the held-out
    # greedy reward (Adam turns sparse, noisy advantages into full-size steps; T=1 samples from a tiny model
    # are mostly garbage, far from the greedy output); lr 5e-5 at T=0.7 raises it.
    learning_rate: float = 5e-5
    max_steps: int = 40
    batch_size: int = 4  # prompts per step (x num_generations completions)
    num_generations: int = 8
    max_completion_length: int = 56  # the world's longest worked solutions are ~52 tokens
    temperature: float = 0.7
    top_p: float = 1.0
    beta: float = 0.0  # KL to the input model; 0 = no reference model (TRL's default)
    loss_type: str = "dapo"
    scale_rewards: str = "group"  # group | batch | none
    rewards: list[str] = field(default_factory=lambda: ["world"])
    reward_weights: list[float] | None = None
    use_vllm: bool | None = None  # None = on when CUDA and vllm are available

    def validate(self) -> None:
        super().validate()
        check_range("num_generations", self.num_generations, lo=2)
        check_range("max_completion_length", self.max_completion_length, lo=1)
        check_range("temperature", self.temperature, lo=0.0, lo_open=True)
        check_range("top_p", self.top_p, lo=0.0, hi=1.0, lo_open=True)
        check_range("beta", self.beta, lo=0.0)
        check_choice("loss_type", self.loss_type, ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"))
        check_choice("scale_rewards", self.scale_rewards, ("group", "batch", "none"))
        if not self.rewards:
            raise ConfigError("rewards: give at least one reward name (for example [world])")
        check_reward_weights(self.rewards, self.reward_weights)


def _vllm(cfg: GRPOStageConfig, device: str) -> bool:
    if cfg.use_vllm is None:
        return device.startswith("cuda") and has_vllm()
    if cfg.use_vllm and not has_vllm():
        raise ConfigError("use_vllm=true but vLLM (with a GPU) is not available; unset use_vllm")
    return cfg.use_vllm


class GRPOStage(PosttrainStage):
    name = STAGE
    cfg: GRPOStageConfig

    def read(self) -> None:
        cfg = self.cfg
        self.rows = read_rows(cfg.data, required=RL_FIELDS, limit=cfg.limit)
        self.reward_fns = [resolve_reward(n) for n in cfg.rewards]
        check_reward(weighted_reward(cfg.rewards, cfg.reward_weights), self.rows, cfg.data)

    def prepare(self, model, tokenizer) -> None:
        self.use_vllm = _vllm(self.cfg, self.device)

    def build(self, model, tokenizer, scratch: Path) -> tuple[Any, str]:
        from trl import GRPOConfig, GRPOTrainer  # TRL is heavy: imported when a stage runs, not on `remit --help`

        cfg, use_vllm = self.cfg, self.use_vllm
        values = {
            **common_values(cfg, self.device, scratch),
            "per_device_train_batch_size": per_process(cfg.batch_size, "batch_size") * cfg.num_generations,
            "num_generations": cfg.num_generations,
            "max_completion_length": cfg.max_completion_length,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "beta": cfg.beta,
            "loss_type": cfg.loss_type,
            "scale_rewards": cfg.scale_rewards,
            "reward_weights": cfg.reward_weights,
            "use_vllm": use_vllm,
        }
        if use_vllm:
            values.update(vllm_mode="colocate", vllm_max_model_length=cfg.max_length + cfg.max_completion_length)
        args = trl_args(GRPOConfig, STAGE, values, cfg.trl)
        trainer = GRPOTrainer(model=model, reward_funcs=self.reward_fns, args=args,
                              train_dataset=prompt_dataset(self.rows), processing_class=tokenizer)
        return trainer, (f"{len(self.rows)} prompts, {cfg.max_steps} steps of {cfg.batch_size} prompts x "
                         f"{cfg.num_generations} generations on {self.device}{' (vLLM)' if use_vllm else ''}")

    def extras(self, log_history: list[dict[str, Any]]) -> dict[str, Any]:
        train_rewards = [r["reward"] for r in log_history if "reward" in r]
        zero_std = [r["frac_reward_zero_std"] for r in log_history if "frac_reward_zero_std" in r]
        return {"prompts": len(self.rows), "use_vllm": self.use_vllm,
                "train_reward_first": train_rewards[0] if train_rewards else None,
                "train_reward_last": train_rewards[-1] if train_rewards else None,
                "frac_reward_zero_std": sum(zero_std) / len(zero_std) if zero_std else None}


@locks_out_dir("out", STAGE, main_only=True)
def run(cfg: GRPOStageConfig) -> Path:
    return GRPOStage(cfg).run()
