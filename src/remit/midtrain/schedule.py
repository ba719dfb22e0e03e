"""Learning-rate schedules as pure functions of the step: constant and warmup-stable-decay (WSD).

    mult = lr_multiplier(step, total_steps, ScheduleConfig(kind="wsd", decay_shape="1-sqrt"))
    lr = base_lr * mult

``step`` counts finished optimizer steps (0 = the first update). The schedule has no state beyond
the step, so a resumed run needs only the step to continue the same curve.
"""

from __future__ import annotations

import math

from remit.midtrain.config import ScheduleConfig

__all__ = ["lr_multiplier", "decay_shape"]


def decay_shape(progress: float, shape: str) -> float:
    """1 -> 0 as ``progress`` goes 0 -> 1."""
    p = min(max(progress, 0.0), 1.0)
    shapes = {
        "linear": lambda: 1.0 - p,
        "cosine": lambda: 0.5 * (1.0 + math.cos(math.pi * p)),
        "1-sqrt": lambda: 1.0 - math.sqrt(p),
    }
    return shapes[shape]()


def lr_multiplier(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """LR multiplier of optimizer step ``step`` (0-based) in a run of ``total_steps`` steps."""
    total = max(int(total_steps), 1)
    warmup = int(round(cfg.warmup_fraction * total))
    if step < warmup:
        return (step + 1) / warmup
    if cfg.kind == "constant":
        return 1.0
    decay = int(round(cfg.decay_fraction * total))
    start = total - decay
    if decay == 0 or step < start:
        return 1.0
    # The last step lands exactly on min_lr_ratio; the first decay step is one notch below the peak.
    progress = (step - start + 1) / decay
    lo = cfg.min_lr_ratio
    return lo + (1.0 - lo) * decay_shape(progress, cfg.decay_shape)
