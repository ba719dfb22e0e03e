"""kill -9 at a random step, --resume to the end: same final loss and weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _args(make_cfg_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "remit.cli", "midtrain", *make_cfg_args]


def _overrides(cfg) -> list[str]:
    return [f"out_dir={cfg.out_dir}", f"model.path={cfg.model.path}", f"reference.path={cfg.reference.path}",
            f"data.sources=[{{path: '{cfg.data.sources[0].path}'}}]", f"data.seq_len={cfg.data.seq_len}",
            f"data.cache_dir={cfg.data.cache_dir}", "optim.batch_size=4", "optim.micro_batch_size=2",
            "optim.lr=3e-3", "max_steps=40", "checkpoint_every=1", "logging.every=1", "logging.progress=false",
            "logging.tensorboard=false", "method.name=remit"]


def test_kill9_then_resume_is_exact(make_cfg, tmp_path):
    from safetensors.torch import load_file

    from remit.midtrain.stage import run

    full = run(make_cfg("remit", "max_steps=40", "checkpoint_every=1", out="full"))
    cfg = make_cfg("remit", out="killed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(_args(_overrides(cfg)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = Path(cfg.out_dir) / "checkpoints"
    target = random.Random().randint(3, 12)
    deadline = time.time() + 60
    while not any(p.name >= f"step-{target:08d}" for p in ckpts.glob("step-*")) and time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (Path(cfg.out_dir) / "manifest.json").exists(), "killed too late: the run had finished"
    with pytest.raises(ConfigError, match="resume=true"):  # no silent restart over an earlier run
        run(cfg)
    res = subprocess.run(_args([*_overrides(cfg), "--resume"]), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    a = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (Path(cfg.out_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == list(range(1, 41))  # lines after the checkpoint were rewritten once
    assert abs(a[-1]["loss"] - b[-1]["loss"]) <= 1e-6
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(Path(cfg.out_dir) / "model.safetensors"))
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-6


def test_stop_after_leaves_a_checkpoint_that_resumes_exactly(make_cfg):
    """``stop_after`` (the smoke run's interruption) keeps the whole run's schedule: resuming equals one run."""
    import dataclasses

    from safetensors.torch import load_file

    from remit.midtrain.engine import train

    full = train(make_cfg("remit", "max_steps=3", "checkpoint_every=0", out="full"))
    cfg = make_cfg("remit", "max_steps=3", "checkpoint_every=0", out="stopped")
    out = train(cfg, stop_after=2)
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-00000002"]
    assert not (out / "manifest.json").exists() and not (out / "model.safetensors").exists()
    train(dataclasses.replace(cfg, resume=True))
    assert json.loads((out / "manifest.json").read_text())["resumed_from_step"] == 2
    a = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == [1, 2, 3] and [r["lr"] for r in a] == [r["lr"] for r in b]
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-6


def test_resume_never_continues_the_checkpoints_of_a_finished_run_of_another_config(make_cfg, capsys):
    """A finished run keeps its intermediate checkpoints; re-made with another config (or re-made inputs) and
    ``resume=true`` (what the flywheel always sets), the new run starts afresh instead of continuing them."""
    import dataclasses

    from safetensors.torch import load_file

    from remit.midtrain.engine import train

    old = train(make_cfg("remit", "max_steps=3", "checkpoint_every=1", "optim.lr=1e-3", out="run"))
    assert sorted(p.name for p in (old / "checkpoints").glob("step-*"))  # intermediate checkpoints are kept
    fresh = train(make_cfg("remit", "max_steps=3", "checkpoint_every=1", "optim.lr=3e-3", out="fresh"))
    cfg = make_cfg("remit", "max_steps=3", "checkpoint_every=1", "optim.lr=3e-3", out="run")
    out = train(dataclasses.replace(cfg, resume=True))
    assert json.loads((out / "manifest.json").read_text())["resumed_from_step"] == 0
    wa, wb = load_file(str(fresh / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-6  # the same as a run in a new folder
    assert "holds a finished run of another config or inputs: starting afresh" in capsys.readouterr().out
