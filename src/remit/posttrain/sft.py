"""Supervised fine-tuning on prompt/response pairs with TRL's SFTTrainer (assistant-only loss).

    remit sft model=runs/x/midtrain data=runs/x/world/sft.jsonl out=runs/x/sft [learning_rate=5e-4 ...]

Each row ``{"prompt", "response", ...}`` becomes a two-turn chat, given to TRL in its conversational
prompt/completion form: the prompt is every turn before the last assistant turn, the completion that turn.
With ``assistant_only_loss`` (default) the loss counts only the completion's tokens: TRL renders the prompt
with ``add_generation_prompt=True`` and the whole chat, and masks their common prefix. This works with any
chat template, hub templates without ``{% generation %}`` markers (SmolLM2, Llama 3, Qwen 2.5) included
(TRL's ``assistant_only_loss`` needs the markers); with remit's own template it gives the same mask as the
markers (the completion is the assistant's text and its closing eos; tests/posttrain/test_sft.py).
The chat is rendered exactly as the template renders it: a default system prompt that the template injects
is kept (docs/ARCHITECTURE.md, "Chat rendering").

The loss is TRL's ``loss_type="nll"``, pinned (TRL has changed its default before): summed over the
completion tokens of the optimizer step and divided once by their count across accumulation steps, so
1 x 8 and 8 x 1 micro-batches give the same update (tested).
Writes an HF checkpoint + ``config.yaml`` + ``metrics.jsonl`` + ``manifest.json`` into ``out``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_choice
from remit.data.sources import iter_limited
from remit.posttrain.common import PosttrainStage, StageConfig, common_values, trl_args
from remit.posttrain.data import SFT_FIELDS, read_rows, sft_dataset
from remit.utils.lock import locks_out_dir


def chat_source(spec: dict[str, Any]):
    """``sft.source`` as a ``DataSource`` of kind chat (one line naming the key when it is not one)."""
    from remit.config import build_config
    from remit.data.sources import DataSource
    from remit.errors import ConfigError

    src = build_config(DataSource, dict(spec), "source")
    if src.kind != "chat":
        raise ConfigError(f"source.kind={src.kind!r}: SFT reads conversations; give kind: chat (and messages_field)")
    return src

STAGE = "sft"


@dataclass
class SFTStageConfig(StageConfig):
    learning_rate: float = 1e-3
    max_steps: int = 80
    batch_size: int = 16
    assistant_only_loss: bool = True  # loss on the last assistant turn only (TRL's completion_only_loss)
    loss_type: str = "nll"  # nll | dft (TRL's SFT loss; pinned here, not left to TRL's default)
    # A chat data source instead of `data` (a remit.data DataSource mapping with kind: chat: a local file or a
    # hub dataset of [{role, content}, ...] conversations, e.g. {path: HuggingFaceTB/smoltalk2, subset: SFT,
    # split: ..., kind: chat}); the loss is on each conversation's last assistant turn.
    source: dict[str, Any] = field(default_factory=dict, metadata={"omit_if_empty": True})

    def required_keys(self) -> tuple[str, ...]:
        return ("model", "out") if self.source else super().required_keys()

    def validate(self) -> None:
        super().validate()
        check_choice("loss_type", self.loss_type, ("nll", "dft"))
        if self.source:
            chat_source(self.source)  # a bad key or kind is one line now, not after the model loads


class SFTStage(PosttrainStage):
    name = STAGE
    cfg: SFTStageConfig

    def read(self) -> None:
        if self.cfg.source:
            src = chat_source(self.cfg.source)
            if self.cfg.limit is not None and (src.limit is None or src.limit > self.cfg.limit):
                src = dataclasses.replace(src, limit=self.cfg.limit)
            self.rows = [{"messages": m} for m in iter_limited(src)]
            return
        self.rows = read_rows(self.cfg.data, required=SFT_FIELDS, limit=self.cfg.limit)

    def build(self, model, tokenizer, scratch: Path) -> tuple[Any, str]:
        from trl import SFTConfig, SFTTrainer  # TRL is heavy: imported when a stage runs, not on `remit --help`

        cfg = self.cfg
        args = trl_args(SFTConfig, STAGE, {
            **common_values(cfg, self.device, scratch),
            "max_length": cfg.max_length,
            "completion_only_loss": cfg.assistant_only_loss,
            "assistant_only_loss": False,  # needs {% generation %} markers; the prompt/completion split does not
            "loss_type": cfg.loss_type,
            "packing": False,
        }, cfg.trl)
        dataset = sft_dataset(self.rows).map(prompt_completion, remove_columns=["messages"])  # chats or pairs
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        return trainer, (f"{len(self.rows)} examples, {cfg.max_steps} steps of {cfg.batch_size * cfg.grad_accum} "
                         f"on {self.device}")

    def extras(self, log_history: list[dict[str, Any]]) -> dict[str, Any]:
        return {"examples": len(self.rows)}


def prompt_completion(row: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """A ``messages`` chat as TRL's conversational prompt/completion: the last assistant turn is the completion."""
    messages = row["messages"]
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return {"prompt": messages[:last], "completion": messages[last:last + 1]}


@locks_out_dir("out", STAGE, main_only=True)
def run(cfg: SFTStageConfig) -> Path:
    return SFTStage(cfg).run()
