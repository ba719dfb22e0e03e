"""Distributed flywheel stages: ``launcher`` runs each training and post-training stage on several processes.

    remit flywheel launcher='torchrun --standalone --nproc_per_node 8'
    remit flywheel launcher='accelerate launch --num_processes 8'

With a launcher, a pretrain, midtrain or posttrain stage is saved as its resolved config
(``<run>/launch/<stage id>.yaml``) and run as ``<launcher> -m remit.cli <stage> --config <that file>``
(``torchrun`` is run as ``python -m torch.distributed.run`` of this interpreter). The config is the one the
flywheel would have run in-process, so reuse and resume are unchanged: a stage finished with the same
config is skipped (by the stage itself, on every rank), a killed one resumes (``resume=true`` is set),
and a run switches between launched and in-process stages without redoing anything. The world, the
evaluations and the report stay in this process. Without a launcher nothing changes. A plugin's methods
reach the launched workers through ``REMIT_PLUGINS=my_methods`` (``--plugin`` imports into this process only).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remit.config import save_config
from remit.errors import ConfigError, TrainingError

__all__ = ["LAUNCHED", "launch_prefix", "launched_runner"]

LAUNCHED = {"pretrain": "pretrain", "midtrain": "midtrain", "posttrain": "posttrain"}  # stage kind -> CLI stage


def launch_prefix(launcher: str) -> list[str]:
    """The command before ``-m remit.cli ...``; a one-line error naming ``launcher`` when it cannot run."""
    try:
        words = shlex.split(launcher)
    except ValueError as e:
        raise ConfigError(f"launcher={launcher!r} cannot be split into words ({e})") from None
    if not words:
        return []
    if words[0] == "torchrun":  # this interpreter's torch, whether or not its bin/ is on PATH
        return [sys.executable, "-m", "torch.distributed.run", *words[1:]]
    if shutil.which(words[0]) is None:
        raise ConfigError(f"launcher={launcher!r}: '{words[0]}' is not a command on PATH "
                          f"(for example launcher='torchrun --nproc_per_node 8')")
    return words


def launched_runner(prefix: list[str], kind: str, sid: str, folder: Path) -> Callable[[Any], Path]:
    """A stage runner that runs the stage under the launcher, as a subprocess; its output streams through."""
    def run(cfg: Any) -> Path:
        path = save_config(cfg, folder / f"{sid}.yaml")
        cmd = [*prefix, "-m", "remit.cli", LAUNCHED[kind], "--config", str(path)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        src = str(Path(__file__).resolve().parents[2])  # the workers import this remit, installed or not
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        done = subprocess.run(cmd, env=env)
        if done.returncode != 0:
            raise TrainingError(f"{sid}: `{shlex.join(cmd)}` exited with {done.returncode} (its output is above); "
                                f"re-run the flywheel to continue from its last checkpoint")
        return Path(getattr(cfg, "out_dir", None) or cfg.out)
    return run
