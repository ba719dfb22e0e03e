"""Supervised fine-tuning on prompt/response pairs with TRL's SFTTrainer (assistant-only loss).

    remit sft model=runs/x/midtrain data=runs/x/world/sft.jsonl out=runs/x/sft [learning_rate=5e-4 ...]

Each row ``{"prompt", "response", ...}`` becomes a two-turn chat; the loss counts only the
assistant's tokens (the chat template's ``{% generation %}`` block, closing eos included).
Writes an HF checkpoint + ``config.yaml`` + ``metrics.jsonl`` + ``manifest.json`` into ``out``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remit.posttrain.common import PosttrainStage, StageConfig, common_values, trl_args
from remit.posttrain.data import SFT_FIELDS, read_rows, sft_dataset
from remit.utils.lock import locks_out_dir

STAGE = "sft"


@dataclass
class SFTStageConfig(StageConfig):
    learning_rate: float = 1e-3
    max_steps: int = 80
    batch_size: int = 16
    assistant_only_loss: bool = True


class SFTStage(PosttrainStage):
    name = STAGE
    cfg: SFTStageConfig

    def read(self) -> None:
        self.rows = read_rows(self.cfg.data, required=SFT_FIELDS, limit=self.cfg.limit)

    def build(self, model, tokenizer, scratch: Path) -> tuple[Any, str]:
        from trl import SFTConfig, SFTTrainer  # TRL is heavy: imported when a stage runs, not on `remit --help`

        cfg = self.cfg
        args = trl_args(SFTConfig, STAGE, {
            **common_values(cfg, self.device, scratch),
            "max_length": cfg.max_length,
            "assistant_only_loss": cfg.assistant_only_loss,
            "packing": False,
        }, cfg.trl)
        trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(self.rows), processing_class=tokenizer)
        return trainer, (f"{len(self.rows)} examples, {cfg.max_steps} steps of {cfg.batch_size * cfg.grad_accum} "
                         f"on {self.device}")

    def extras(self, log_history: list[dict[str, Any]]) -> dict[str, Any]:
        return {"examples": len(self.rows)}


@locks_out_dir("out", STAGE, main_only=True)
def run(cfg: SFTStageConfig) -> Path:
    return SFTStage(cfg).run()
