"""SIGTERM to `remit experiment` stops its seed flywheels too (separate processes with their own command lines:
before, `kill <experiment pid>` left them training into the run folders)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_stops_the_seed_flywheels(tmp_path, procs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "remit.cli", "experiment", "--config", str(REPO / "configs/experiments/smoke.yaml"),
           f"runs_dir={tmp_path}", f"flywheel_config={REPO / 'configs/flywheel/smoke.yaml'}", "seeds=[0]", "jobs=1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline, kids = time.time() + 180, []
    while time.time() < deadline and proc.poll() is None and not kids:
        kids = [k for k in procs.children(proc.pid) if "flywheel" in Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace")]
        time.sleep(0.2)
    assert kids, f"no seed flywheel started (exit {proc.poll()}): {proc.stderr.read().decode()[-400:] if proc.poll() is not None else ''}"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    end = time.time() + 30
    while time.time() < end and any(procs.alive(k) for k in kids):
        time.sleep(0.2)
    assert not any(procs.alive(k) for k in kids), "the seed flywheel outlived the experiment"
    assert proc.returncode != 0
