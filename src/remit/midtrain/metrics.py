"""Training metrics: ``metrics.jsonl``, TensorBoard (``tb/``), wandb (when asked) and a tqdm bar.

One JSON line per logged step with ``step, tokens, loss, nll, lr, grad_norm, tokens_per_s`` (and ``mfu``
when the chip's peak is known, ``peak_mem_gib`` on CUDA, ``max_rss_gib``: rank 0's) and the
method's own statistics (ReMiT: ``w_mean, w_std, w_frac_hi, w_frac_lo, w_hist, w_hist_range,
delta_mean, delta_std``) over the counted tokens of ALL micro-batches and ranks of the logged step
(summable sums, reduced by the trainer: ``remit.objectives.stats``). Only rank 0 writes.

wandb: the run's id is kept in ``<out_dir>/wandb_id``, so a resumed run logs into the same wandb run
(``resume="allow"``, from the checkpoint's step on); a fresh start (step 0) begins a new one.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from remit.errors import ConfigError
from remit.utils import integrations
from remit.utils.io import atomic_write_text

__all__ = ["MetricsLogger", "truncate_jsonl", "truncate_logs"]


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
    atomic_write_text(path, "".join(k + "\n" for k in keep))


def truncate_logs(out_dir: Path, step: int) -> None:
    """Cut the logs back to the checkpoint a run continues from (``step`` 0: a fresh start).

    ``metrics.jsonl`` keeps the lines up to ``step``. TensorBoard event files cannot be cut in place:
    from scratch ``tb/`` is deleted; on resume :class:`MetricsLogger` opens its writer with
    ``purge_step = step + 1``, TensorBoard's own marker that hides the dead run's later events.
    """
    out_dir = Path(out_dir)
    truncate_jsonl(out_dir / "metrics.jsonl", step)
    if step == 0:
        shutil.rmtree(out_dir / "tb", ignore_errors=True)


class MetricsLogger:
    """Writes metrics on rank 0; a no-op elsewhere."""

    def __init__(self, out_dir: Path, cfg, *, enabled: bool, total_steps: int, start_step: int = 0,
                 run_config: dict | None = None, flops_per_token: float | None = None, peak_flops: float | None = None,
                 device: str = "cpu"):
        self.enabled = enabled
        # MFU = tokens/s (all ranks) x training FLOPs per token / (the chip's dense peak x processes)
        self.flops_per_token, self.peak_flops, self.device = flops_per_token, peak_flops, device
        self.out_dir = Path(out_dir)
        self.tb = self.wandb = self.bar = None
        self._file = None
        self._t0 = time.perf_counter()
        self._tokens0 = 0
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8")
        if cfg.tensorboard and integrations.has_tensorboard():
            from torch.utils.tensorboard import SummaryWriter

            # Events after the checkpoint, written by a run that died, are purged by TensorBoard.
            self.tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=start_step + 1 if start_step else None)
        if cfg.wandb:
            if not integrations.has_wandb():
                raise ConfigError("logging.wandb=true but wandb is not installed (pip install 'remit[wandb]')")
            import wandb

            self.wandb = wandb.init(project=cfg.wandb_project, config=run_config, dir=str(self.out_dir),
                                    id=self._wandb_id(start_step, wandb), resume="allow")
        if cfg.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)

    def _wandb_id(self, start_step: int, wandb) -> str:
        path = self.out_dir / "wandb_id"
        if start_step and path.is_file():
            return path.read_text(encoding="utf-8").strip()
        run_id = wandb.util.generate_id()
        atomic_write_text(path, run_id + "\n")
        return run_id

    def _resources(self, tokens_per_s: float) -> dict[str, float]:
        out = {"max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}  # KiB on Linux
        if self.flops_per_token and self.peak_flops:
            out["mfu"] = tokens_per_s * self.flops_per_token / self.peak_flops
        peak = integrations.peak_memory_bytes(self.device)
        if peak is not None:
            out["peak_mem_gib"] = peak / 2 ** 30
            integrations.reset_peak_memory(self.device)  # the next line's peak is its own window's
        return out

    def start_window(self, tokens: int) -> None:
        self._t0, self._tokens0 = time.perf_counter(), tokens

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        dt = max(time.perf_counter() - self._t0, 1e-9)
        tps = (record["tokens"] - self._tokens0) / dt
        record = {**record, "tokens_per_s": tps, **self._resources(tps)}
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
