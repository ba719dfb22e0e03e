"""Resumable training checkpoints: ``<out_dir>/checkpoints/step-XXXXXXXX/``.

Each checkpoint directory is written whole into a temp dir and renamed into place
(``remit.utils.io.atomic_dir``), so a crash while saving never leaves a broken checkpoint under a
final name: :func:`latest` only ever sees complete ones. A checkpoint holds

* ``model.pt`` / ``optimizer.pt``: full (unsharded) fp32 state dicts of the training wrapper
  (``PolicyLogps``), so model keys carry a ``model.`` prefix; :func:`load_hf_state` strips it to load
  an intermediate checkpoint into the HF model; the final HF checkpoint in ``out_dir`` is a plain
  ``save_pretrained``,
* ``state.pt``: step, tokens seen, schedule position, per-rank RNG states and data-iterator states.

With ``parallel=fsdp`` a checkpoint is sharded instead (``remit.midtrain.sharded``: ``dcp/`` + ``state.pt``,
every rank writes its own shard). The last ``keep`` checkpoints are kept. Files and folder are fsynced before the rename; a full disk
(or a file size limit) while saving is a one-line :class:`remit.errors.TrainingError` that names
the folder and says that the previous checkpoint is intact (the temp folder is removed).
"""

from __future__ import annotations

import errno
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remit.errors import TrainingError
from remit.utils.io import atomic_dir, remove_stale_temps

__all__ = ["save_checkpoint", "latest", "load_checkpoint", "rng_state", "set_rng_state", "list_checkpoints",
           "remove_stale_temps", "write_failure", "snapshot_dir"]

_NAME = re.compile(r"^step-(\d{8})$")


def _dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / "state.pt").is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def snapshot_dir(out_dir: str | Path, tokens: int) -> Path:
    """Where a run writes its weights-only snapshot at ``tokens`` trained tokens (``snapshot_tokens``)."""
    return Path(out_dir) / "snapshots" / f"tokens-{int(tokens):012d}"


def latest(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def save_checkpoint(root: str | Path, step: int, model_sd: dict, optim_sd: dict, state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write one checkpoint atomically (call on rank 0 only) and prune older ones."""
    root = Path(root)
    path = _dir(root, step)
    prev = latest(root)
    try:
        with atomic_dir(path) as tmp:
            torch.save(model_sd, tmp / "model.pt")
            torch.save(optim_sd, tmp / "optimizer.pt")
            torch.save({**state, "step": step}, tmp / "state.pt")
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError ("unexpected pos")
        keep = f"the previous checkpoint {prev} is intact" if prev else "no earlier checkpoint exists"
        raise TrainingError(f"saving checkpoint {path} failed: {write_failure(e, root)}; {keep} "
                            f"(free some space, then resume=true)") from None
    for _, old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def write_failure(e: BaseException, where: Path) -> str:
    """Why a write failed, in words: a full disk, a file size limit, or the first line of the error."""
    code = getattr(e, "errno", None)
    try:
        free = f"{shutil.disk_usage(where).free / 2**20:,.0f} MiB free"
    except OSError:
        free = "free space unknown"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device ({free})"
    if code == errno.EFBIG:
        return f"a file grew past the file size limit ({free})"
    if isinstance(e, OSError):
        return f"{e.strerror or e} ({free})"
    return f"the disk is full or a file size limit was hit ({free})"


def load_hf_state(path: str | Path, map_location: str = "cpu") -> dict:
    """A checkpoint's model weights keyed for the HF model (``model.load_state_dict``), without the optimizer."""
    sd = torch.load(Path(path) / "model.pt", map_location=map_location, weights_only=True)
    return {k.removeprefix("model."): v for k, v in sd.items()}


def load_checkpoint(path: str | Path) -> tuple[dict, dict, dict]:
    path = Path(path)
    model_sd = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    optim_sd = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    return model_sd, optim_sd, state


def rng_state() -> dict[str, Any]:
    out = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
