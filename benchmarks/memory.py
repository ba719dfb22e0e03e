"""Peak memory of a training step, shared by the benchmarks (``bench_midtrain.py``, ``bench_real_model.py``).

Each variant is measured in its own process (``in_subprocess``: the script re-run with ``--mem NAME``), so one
variant's allocator state does not leak into the next; inside it, ``peak_above_start`` resets the kernel's
high-water mark after a warm-up step and reports how far the timed steps rose above it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def rss_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in KiB; -1 where it is absent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def peak_above_start(step: Callable, batches: list) -> float:
    """MiB the process's peak RSS rose during ``step`` on ``batches[1:]``, above the RSS after ``batches[0]``."""
    step(batches[0])  # optimizer state allocated, allocator warmed
    base = rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    for b in batches[1:]:
        step(b)
    return (rss_kib("VmHWM") - base) / 1024


def in_subprocess(script: str, name: str, batch: int, seq: int) -> float:
    """``peak_above_start_mib`` of variant ``name``, measured by ``script --mem name`` in a fresh process."""
    res = subprocess.run([sys.executable, script, "--mem", name, "--batch", str(batch), "--seq", str(seq)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])["peak_above_start_mib"]
