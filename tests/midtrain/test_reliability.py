"""A run never corrupts its folder quietly: one run per out_dir, logs cut back to the checkpoint,
no litter from killed saves, a full disk is a one-line error that keeps the previous checkpoint."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remit.errors import TrainingError

REPO = Path(__file__).resolve().parents[2]


def _steps(out: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]


def _cli_args(cfg, *extra: str) -> list[str]:
    return [f"out_dir={cfg.out_dir}", f"model.path={cfg.model.path}",
            f"data.sources=[{{path: '{cfg.data.sources[0].path}'}}]", f"data.seq_len={cfg.data.seq_len}",
            f"data.cache_dir={cfg.data.cache_dir}", "optim.batch_size=4", "optim.micro_batch_size=2",
            "logging.every=1", "logging.progress=false", "logging.tensorboard=false", *extra]


def test_two_runs_on_one_out_dir_cannot_both_proceed(make_cfg, capsys):
    from remit.cli import main

    cfg = make_cfg("ntp")
    run_dir = Path(cfg.out_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen([sys.executable, "-m", "remit.cli", "midtrain", *_cli_args(cfg, "max_steps=40",
                              "checkpoint_every=1")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while not (run_dir / "metrics.jsonl").is_file() or not _steps(run_dir):
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    code = main(["midtrain", *_cli_args(cfg, "max_steps=40", "checkpoint_every=1")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"remit midtrain: error: out_dir={run_dir} is in use by process {first.pid} ")
    assert len(err.splitlines()) == 1
    assert first.wait(timeout=180) == 0, first.stderr.read().decode()[-2000:]
    assert _steps(run_dir) == list(range(1, 41))  # one run's lines, once each


def test_a_fresh_start_drops_the_logs_of_a_run_killed_before_its_first_checkpoint(make_cfg):
    from remit.midtrain.stage import run

    cfg = make_cfg("ntp", "logging.tensorboard=true")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True)
    (out / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 9.0}) + "\n" for s in range(1, 6)))
    (out / "tb").mkdir()
    (out / "tb" / "events.out.tfevents.dead").write_bytes(b"stale")
    run(cfg)
    assert _steps(out) == [1, 2, 3, 4]
    assert all(r["loss"] != 9.0 for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()))
    assert not (out / "tb" / "events.out.tfevents.dead").exists()


def test_resume_cuts_metrics_and_tensorboard_back_to_the_checkpoint(make_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from remit.midtrain.stage import run

    cfg = make_cfg("ntp", "max_steps=6", "checkpoint_every=2", "logging.tensorboard=true")
    out = Path(cfg.out_dir)
    run(cfg)
    # Simulate a kill after step 6 was logged but before the run finished: no manifest, no final model,
    # the latest checkpoint is step 4, and logs of steps 5..6 (plus a dead run's 7..9) exist.
    (out / "manifest.json").unlink()
    with open(out / "metrics.jsonl", "a") as f:
        for s in (7, 8, 9):
            f.write(json.dumps({"step": s, "loss": 9.0}) + "\n")
    run(make_cfg("ntp", "max_steps=6", "checkpoint_every=2", "logging.tensorboard=true", "resume=true"))
    assert _steps(out) == [1, 2, 3, 4, 5, 6]
    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]  # 5, 6 once: purged, then rewritten


def test_leftover_temp_checkpoints_of_dead_processes_are_removed_on_start(make_cfg):
    from remit.midtrain.stage import run

    cfg = make_cfg("ntp", "checkpoint_every=2")
    root = Path(cfg.out_dir) / "checkpoints"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    litter = root / f".step-00000002.tmp-{dead.pid}"
    litter.mkdir(parents=True)
    (litter / "optimizer.pt").write_bytes(b"\0" * 4096)
    (root.parent / f".metrics.jsonl.tmp-{dead.pid}").write_text("half")
    run(cfg)
    assert sorted(p.name for p in root.iterdir()) == ["step-00000002"]
    assert not [p.name for p in root.parent.iterdir() if p.name.startswith(".")]


def test_disk_full_while_saving_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    import torch

    from remit.midtrain import checkpoint as ckpt

    root = tmp_path / "checkpoints"
    small = {"w": torch.zeros(10)}
    ckpt.save_checkpoint(root, 1, small, small, {"tokens": 1})
    big = {"w": torch.zeros(1 << 20)}  # 4 MiB
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(TrainingError) as e:
            ckpt.save_checkpoint(root, 2, big, big, {"tokens": 2})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    msg = str(e.value)
    assert msg.startswith(f"saving checkpoint {root / 'step-00000002'} failed: the disk is full or a file size "
                          f"limit was hit")
    assert f"the previous checkpoint {root / 'step-00000001'} is intact" in msg and "\n" not in msg
    assert "inline_container" not in msg
    assert sorted(p.name for p in root.iterdir()) == ["step-00000001"]  # no temp folder left
    msd, _, state = ckpt.load_checkpoint(root / "step-00000001")
    assert state["step"] == 1 and torch.equal(msd["w"], small["w"])


def test_disk_full_during_a_run_is_one_line_on_the_command_line(make_cfg, tmp_path):
    cfg = make_cfg("ntp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    base = [sys.executable, "-m", "remit.cli", "midtrain"]
    # Warm the tokenisation cache without a limit; then checkpoints (~0.2 MB model, ~0.4 MB optimizer) hit it.
    assert subprocess.run([*base, *_cli_args(cfg, "max_steps=1", "checkpoint_every=0")], env=env,
                          capture_output=True).returncode == 0

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))

    res = subprocess.run([*base, *_cli_args(cfg, "max_steps=4", "checkpoint_every=1", "overwrite=true")], env=env,
                         capture_output=True, text=True, preexec_fn=limit, timeout=120)
    err = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(err) == 1 and err[0].startswith(f"remit midtrain: error: saving checkpoint {cfg.out_dir}/checkpoints/")
    assert "no earlier checkpoint exists" in err[0] or "is intact" in err[0]
    assert not [p for p in (Path(cfg.out_dir) / "checkpoints").iterdir() if p.name.startswith(".")]
