"""Post-training on 2 processes (torchrun, gloo, CPU): a stage killed with -9 mid-training resumes from its
TRL checkpoint (resume=true) and finishes with one manifest written by rank 0; without resume=true the
leftover checkpoint is a one-line error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remit.errors import ConfigError
from remit.posttrain import sft
from remit.posttrain.launch import scratch_dir

REPO = Path(__file__).resolve().parents[2]
STEPS = 120

pytestmark = [pytest.mark.xdist_group("posttrain_trl"), pytest.mark.dist, pytest.mark.slow]


def _sft(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "remit.cli",
            "sft", f"model={model}", f"data={data / 'sft.jsonl'}", f"out={out}", "device=cpu", f"max_steps={STEPS}",
            "batch_size=4", "max_length=48", "save_steps=4", "logging_steps=1", f"eval.data={data / 'eval.jsonl'}",
            "eval.n=4", "eval.max_new_tokens=4", *extra]


def _kill_tree(proc: subprocess.Popen) -> None:
    import psutil

    procs = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
    for p in procs:  # the workers and the agent, at once, as a node failure would
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs(procs, timeout=30)  # gone (their locks with them) before the test goes on


def test_killed_stage_resumes_on_two_processes(tmp_path, tiny_model_dir, task_dir):
    out = tmp_path / "sft"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(_sft(tiny_model_dir, task_dir, out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    scratch = scratch_dir(out)
    deadline = time.time() + 240
    try:
        while not list(scratch.glob("checkpoint-*/trainer_state.json")) and proc.poll() is None:
            assert time.time() < deadline, "no checkpoint written"
            time.sleep(0.05)
    finally:
        _kill_tree(proc)
    assert proc.returncode != 0, proc.stderr.read()[-2000:]  # killed mid-stage, not finished
    assert not (out / "manifest.json").exists()

    cfg = sft.SFTStageConfig(model=str(tiny_model_dir), data=str(task_dir / "sft.jsonl"), out=str(out),
                             device="cpu", max_steps=STEPS, batch_size=4, max_length=48, save_steps=4,
                             logging_steps=1)
    with pytest.raises(ConfigError, match="resume=true"):  # never silently started over
        sft.run(cfg)

    res = subprocess.run(_sft(tiny_model_dir, task_dir, out, "resume=true"), env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["processes"] == 2 and m["resumed_from_step"] >= 4 and m["resumed_from_step"] % 4 == 0
    assert m["steps"] == STEPS and m["eval"]["n"] == 4
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == list(range(1, STEPS + 1))  # the checkpoint's history, then the resumed steps, once each
    assert not scratch.exists()  # checkpoints dropped once the output is complete
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no half-built output folder
    assert res.stderr.count("held-out reward") == 1  # rank 0 evaluates, once
