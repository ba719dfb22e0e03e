"""Logged metrics: MFU and memory on every line; a resumed run logs into the same wandb run."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import pytest

from remit.midtrain.config import LoggingConfig
from remit.midtrain.metrics import MetricsLogger


def test_lines_carry_mfu_and_memory(tmp_path):
    cfg = LoggingConfig(tensorboard=False, progress=False)
    log = MetricsLogger(tmp_path, cfg, enabled=True, total_steps=2, flops_per_token=6e6, peak_flops=1e12)
    log.start_window(0)
    log.log({"step": 1, "tokens": 4096, "loss": 1.0, "lr": 1e-3})
    log.close()
    rec = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert rec["mfu"] == pytest.approx(rec["tokens_per_s"] * 6e6 / 1e12)
    assert 0 < rec["max_rss_gib"] < 1024 and "peak_mem_gib" not in rec  # CPU: no allocator peak


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.util = types.SimpleNamespace(generate_id=lambda: f"id{len(calls)}")
    fake.init = lambda **kw: calls.append(kw) or types.SimpleNamespace(log=lambda *a, **k: None, finish=lambda: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = LoggingConfig(tensorboard=False, progress=False, wandb=True)
    for start in (0, 40, 0):  # a fresh run, its resume from step 40, then a fresh start (overwrite)
        MetricsLogger(tmp_path, cfg, enabled=True, total_steps=100, start_step=start).close()
    assert [(c["id"], c["resume"]) for c in calls] == [("id0", "allow"), ("id0", "allow"), ("id2", "allow")]
    assert (tmp_path / "wandb_id").read_text().strip() == "id2"
