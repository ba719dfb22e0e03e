"""Training metrics: ``metrics.jsonl``, TensorBoard (``tb/``), wandb (when asked) and a tqdm bar.

One JSON line per logged step with ``step, tokens, loss, lr, tokens_per_s`` and, for weighted methods,
``w_mean, w_std, w_frac_hi, w_frac_lo, w_hist, delta_mean, delta_std`` over the counted tokens of ALL
micro-batches and ranks of the logged step (:class:`WeightStats` keeps sufficient statistics that are
summed across ranks with one all-reduce). Only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["WeightStats", "MetricsLogger", "truncate_jsonl", "truncate_logs"]


class WeightStats:
    """Sums over counted tokens of token weights and deltas; ``summary()`` gives the logged fields."""

    def __init__(self, epsilon: float, bins: int = 10):
        self.eps, self.bins = float(epsilon), int(bins)
        self.vec = torch.zeros(8 + self.bins, dtype=torch.float64)

    def reset(self) -> None:
        self.vec.zero_()

    def add(self, stats: dict[str, torch.Tensor], mask: torch.Tensor) -> None:
        m = mask.bool()
        v = self.vec
        w = stats.get("weights")
        if w is not None:
            w = w.detach()[m].double().cpu()
            lo, hi = 1.0 - self.eps, 1.0 + self.eps
            v[0] += w.numel()
            v[1] += w.sum()
            v[2] += (w * w).sum()
            v[3] += (w >= hi - 1e-6).sum()
            v[4] += (w <= lo + 1e-6).sum()
            v[8:] += torch.histc(w.clamp(lo, hi), bins=self.bins, min=lo, max=hi).double()
        d = stats.get("delta")
        if d is not None:
            d = d.detach()[m].double().cpu()
            v[5] += d.numel()
            v[6] += d.sum()
            v[7] += (d * d).sum()

    def summary(self) -> dict[str, Any]:
        v = self.vec.tolist()
        out: dict[str, Any] = {}
        if v[0] > 0:
            n = v[0]
            mean = v[1] / n
            out.update(w_mean=mean, w_std=math.sqrt(max(v[2] / n - mean * mean, 0.0)),
                       w_frac_hi=v[3] / n, w_frac_lo=v[4] / n, w_hist=[int(x) for x in v[8:]])
        if v[5] > 0:
            n = v[5]
            mean = v[6] / n
            out.update(delta_mean=mean, delta_std=math.sqrt(max(v[7] / n - mean * mean, 0.0)))
        return out


def truncate_jsonl(path: Path, max_step: int) -> None:
    """Drop lines logged after ``max_step`` (a resumed run rewrites them)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= max_step:
                keep.append(line)
        except json.JSONDecodeError:
            break  # a line cut by a crash: drop it and everything after
    from remit.utils.io import atomic_write_text

    atomic_write_text(path, "".join(k + "\n" for k in keep))


def truncate_logs(out_dir: Path, step: int) -> None:
    """Cut the logs back to the checkpoint a run continues from (``step`` 0: a fresh start).

    ``metrics.jsonl`` keeps the lines up to ``step``. TensorBoard event files cannot be cut in place:
    from scratch ``tb/`` is deleted; on resume :class:`MetricsLogger` opens its writer with
    ``purge_step = step + 1``, TensorBoard's own marker that hides the dead run's later events.
    """
    import shutil

    out_dir = Path(out_dir)
    truncate_jsonl(out_dir / "metrics.jsonl", step)
    if step == 0:
        shutil.rmtree(out_dir / "tb", ignore_errors=True)


class MetricsLogger:
    """Writes metrics on rank 0; a no-op elsewhere."""

    def __init__(self, out_dir: Path, cfg, *, enabled: bool, total_steps: int, start_step: int = 0,
                 run_config: dict | None = None):
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self.tb = self.wandb = self.bar = None
        self._file = None
        self._t0 = time.perf_counter()
        self._tokens0 = 0
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8")
        from remit.utils import integrations

        if cfg.tensorboard and integrations.has_tensorboard():
            from torch.utils.tensorboard import SummaryWriter

            # Events after the checkpoint, written by a run that died, are purged by TensorBoard.
            self.tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=start_step + 1 if start_step else None)
        if cfg.wandb:
            if not integrations.has_wandb():
                from remit.errors import ConfigError

                raise ConfigError("logging.wandb=true but wandb is not installed (pip install 'remit[wandb]')")
            import wandb

            self.wandb = wandb.init(project=cfg.wandb_project, config=run_config, dir=str(self.out_dir))
        if cfg.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)

    def start_window(self, tokens: int) -> None:
        self._t0, self._tokens0 = time.perf_counter(), tokens

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        dt = max(time.perf_counter() - self._t0, 1e-9)
        record = {**record, "tokens_per_s": (record["tokens"] - self._tokens0) / dt}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        step = record["step"]
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"train/{k}", v, step)
            if "w_hist" in record:
                self.tb.add_histogram("train/weights_hist_counts", torch.tensor(record["w_hist"], dtype=torch.float),
                                      step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
        self.start_window(record["tokens"])

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        for h in (self.bar, self.tb):
            if h is not None:
                h.close()
        if self._file is not None:
            self._file.close()
        if self.wandb is not None:
            self.wandb.finish()
