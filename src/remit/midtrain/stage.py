"""The ``remit pretrain`` and ``remit midtrain`` stages: one engine, two presets.

    remit pretrain --config configs/pretrain/tiny.yaml out_dir=runs/tiny/pretrain
    remit midtrain --config configs/midtrain/remit.yaml model.path=runs/tiny/pretrain reference.path=runs/tiny/grpo
    torchrun --standalone --nproc_per_node=2 -m remit.cli midtrain --config ... parallel=ddp
    remit midtrain --config ... --resume            # continue from the latest checkpoint

Methods (``method.name``, the table of ``remit.methods``): ntp, remit (any reference; SFT-guided = the
SFT model as reference; ``method.frozen_base=true`` for the frozen-base variant), rho1, kd, miniplm, and
any method registered by a plugin (``remit --plugin my_pkg.methods midtrain method.name=mine ...``). A ``reference.cache``
written by ``remit score-reference`` replaces the online reference for remit / rho1.
Output (``out_dir``): an HF checkpoint (model + tokenizer), config.yaml, manifest.json,
metrics.jsonl, tb/ and checkpoints/ (resumable state).
"""

from __future__ import annotations

from pathlib import Path

from remit.midtrain.config import MidtrainConfig, PretrainConfig, as_midtrain

__all__ = ["MidtrainConfig", "PretrainConfig", "run", "run_pretrain"]


def run(cfg: MidtrainConfig) -> Path:
    """Mid-train (anneal) ``cfg.model.path`` with ``cfg.method``; returns the output folder."""
    from remit.midtrain.engine import train  # torch: imported when the stage runs, not for `--help`

    if cfg.smoke:
        from remit.midtrain.smoke import run_smoke

        return run_smoke(cfg)
    return train(cfg, "midtrain")


def run_pretrain(cfg: PretrainConfig) -> Path:
    """Pre-train with next-token prediction (a fresh model unless ``model.path`` is set)."""
    from remit.midtrain.engine import train

    return train(as_midtrain(cfg), "pretrain", record=cfg)
