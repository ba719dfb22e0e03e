"""Post-training on several processes, and TRL checkpoints that let a killed stage resume.

    torchrun --nproc_per_node 8 -m remit.cli posttrain model=runs/x/mid data_dir=runs/x/world out=runs/x/post
    accelerate launch -m remit.cli grpo model=... data=... out=runs/x/grpo save_steps=50
    ... resume=true                       # after a crash: every stage continues from its last checkpoint

Every rank trains (TRL on accelerate: DDP, each rank on its own device, ``cuda:<LOCAL_RANK>``);
``batch_size`` stays the GLOBAL batch (prompts for GRPO), split over the processes, so a config gives the
same optimizer steps on 1 or N processes. Only rank 0 takes the lock of ``out``, measures the held-out
reward, samples DPO's pairs (broadcast to the others), builds the output folder and writes the manifest;
the others wait for it at a barrier, so the next stage finds its input on every rank.

TRL's checkpoints (every ``save_steps`` optimizer steps, the last one kept) go to a hidden sibling of
``out``, ``.<name>.trl/``, which survives a crash and is deleted once the stage's output is complete.
A rerun with ``resume=true`` continues from the latest one (``Trainer.train(resume_from_checkpoint=)``:
weights, optimizer, scheduler, RNG and data position); without it, a leftover checkpoint is a one-line
error, so that a crashed run is never silently started over or silently continued.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from remit.errors import ConfigError

__all__ = ["world_size", "scratch_dir", "resume_point", "per_process", "CHECKPOINT"]

CHECKPOINT = "checkpoint-"  # transformers' name of a checkpoint folder: checkpoint-<step>


def world_size() -> int:
    """Processes of the launcher (torchrun / accelerate launch set WORLD_SIZE); 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def per_process(global_batch: int, key: str) -> int:
    """``global_batch`` split over the processes (it must divide evenly; the error names ``key``)."""
    n = world_size()
    if global_batch % n:
        raise ConfigError(f"{key}={global_batch} is the global batch: it must be a multiple of the {n} processes")
    return global_batch // n


def scratch_dir(out: str | Path) -> Path:
    """TRL's ``output_dir`` of the stage writing ``out``: its checkpoints, beside ``out`` (hidden)."""
    p = Path(out).absolute()
    return p.with_name(f".{p.name}.trl")


def _latest(scratch: Path) -> Path | None:
    done = [p for p in scratch.glob(f"{CHECKPOINT}*") if (p / "trainer_state.json").is_file()
            and p.name.removeprefix(CHECKPOINT).isdigit()]
    return max(done, key=lambda p: int(p.name.removeprefix(CHECKPOINT)), default=None)


def resume_point(out: str | Path, resume: bool, stage: str) -> Path | None:
    """The checkpoint to continue from (``resume=true``), or None to start afresh.

    Every rank calls it and must see the same folder (shared storage, as for ``out``).
    """
    scratch = scratch_dir(out)
    last = _latest(scratch) if scratch.is_dir() else None
    if last is not None and not resume:
        raise ConfigError(f"{stage}: {scratch} holds a checkpoint of an interrupted run ({last.name}): pass "
                          f"resume=true to continue it, or delete {scratch} to start afresh")
    return last


def drop(out: str | Path) -> None:
    """Delete the stage's checkpoints (its output is complete)."""
    shutil.rmtree(scratch_dir(out), ignore_errors=True)
