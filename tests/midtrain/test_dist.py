"""2 processes (torchrun, gloo, CPU) give the same losses and weights as 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.dist
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_match_one(make_cfg, parallel):
    from safetensors.torch import load_file

    from remit.midtrain.stage import run

    # Adam eps 1e-4 (not 1e-8) so that its first updates are not ~lr * sign(grad), which turns float-summation
    # noise in near-zero gradients (DDP averages in another order) into whole-step weight differences.
    one = run(make_cfg("remit", "optim.batch_size=8", "optim.micro_batch_size=2", "max_steps=3", "optim.eps=1e-4",
                       out="one"))
    cfg = make_cfg("remit", out=f"two-{parallel}")
    args = [f"out_dir={cfg.out_dir}", f"model.path={cfg.model.path}", f"reference.path={cfg.reference.path}",
            f"data.sources=[{{path: '{cfg.data.sources[0].path}'}}]", "data.seq_len=32",
            f"data.cache_dir={cfg.data.cache_dir}", "optim.batch_size=8", "optim.micro_batch_size=2",
            "optim.lr=3e-3", "max_steps=3", "logging.every=1", "logging.progress=false", "logging.tensorboard=false",
            "checkpoint_every=2", "method.name=remit", "optim.eps=1e-4", f"parallel={parallel}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "remit.cli", "midtrain", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    two = Path(cfg.out_dir)
    a = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], abs=1e-6)
        assert rb["w_mean"] == pytest.approx(ra["w_mean"], abs=1e-6)
        assert sum(rb["w_hist"]) == sum(ra["w_hist"])  # stats cover both ranks' tokens
    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-6
    assert (two / "checkpoints" / "step-00000002" / "state.pt").is_file()
    assert json.loads((two / "manifest.json").read_text())["world_size"] == 2
