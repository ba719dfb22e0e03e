"""Supervised fine-tuning on prompt/response pairs with TRL's SFTTrainer (assistant-only loss).

    remit sft model=runs/x/midtrain data=runs/x/world/sft.jsonl out=runs/x/sft [learning_rate=5e-4 ...]

Each row ``{"prompt", "response", ...}`` becomes a two-turn chat; the loss counts only the
assistant's tokens (the chat template's ``{% generation %}`` block, closing eos included).
Writes an HF checkpoint + ``config.yaml`` + ``metrics.jsonl`` + ``manifest.json`` into ``out``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from remit.posttrain.common import (
    StageConfig,
    begin,
    common_values,
    finish,
    load_policy,
    resolve_device,
    reward_before,
    say,
    train,
    trl_args,
)
from remit.utils.io import atomic_dir
from remit.utils.lock import locks_out_dir

STAGE = "sft"


@dataclass
class SFTStageConfig(StageConfig):
    learning_rate: float = 1e-3
    max_steps: int = 80
    batch_size: int = 16
    assistant_only_loss: bool = True


@locks_out_dir("out", STAGE)
def run(cfg: SFTStageConfig) -> Path:
    inputs = begin(cfg, STAGE)
    out = Path(cfg.out)
    if inputs is None:
        return out
    started = time.time()
    from remit.posttrain.data import SFT_FIELDS, read_rows, sft_dataset

    rows = read_rows(cfg.data, required=SFT_FIELDS, limit=cfg.limit)
    device = resolve_device(cfg.device)
    model, tokenizer = load_policy(cfg.model, device, STAGE)
    pre = reward_before(model, tokenizer, cfg)
    from trl import SFTConfig, SFTTrainer

    with atomic_dir(out) as tmp:
        args = trl_args(SFTConfig, STAGE, {
            **common_values(cfg, device, tmp / "_trl"),
            "max_length": cfg.max_length,
            "assistant_only_loss": cfg.assistant_only_loss,
            "packing": False,
        }, cfg.trl)
        trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(rows), processing_class=tokenizer)
        say(STAGE, f"{len(rows)} examples, {cfg.max_steps} steps of {cfg.batch_size * cfg.grad_accum} on {device}")
        logs = train(trainer, tmp, STAGE)
        finish(tmp, STAGE, cfg, inputs, trainer.model, tokenizer, logs, pre=pre,
               started=started, examples=len(rows))
    return out

