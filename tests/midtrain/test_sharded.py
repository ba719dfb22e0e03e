"""Sharded (DCP) checkpoints of parallel=fsdp: 2 processes stop after step 2, then resume on 2 processes and on 1,
each continuing to the losses and weights of the uninterrupted 2-process run.

The stop is the state a kill -9 right after the step-2 checkpoint leaves (the checkpoint folder appears by
one rename, the later lines of metrics.jsonl are rewritten on resume): the uninterrupted run's step-2
checkpoint (written asynchronously, checkpoint_async=true, while steps 3-4 trained) is copied into fresh
output folders. Tolerance: 2 -> 2 processes is bitwise (same reduction
order); 2 -> 1 sums the same gradients in another order: losses and weights within 1e-6 (measured: equal losses,
weights within 4e-9; Adam eps 1e-4 as in test_dist).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = 5


def _args(cfg, *extra: str) -> list[str]:
    return [f"out_dir={cfg.out_dir}", f"model.path={cfg.model.path}", f"data.sources=[{{path: '{cfg.data.sources[0].path}'}}]",
            "data.seq_len=32", f"data.cache_dir={cfg.data.cache_dir}", "optim.batch_size=8", "optim.micro_batch_size=2",
            "optim.lr=3e-3", "optim.eps=1e-4", f"max_steps={STEPS}", "logging.every=1", "logging.progress=false",
            "logging.tensorboard=false", "checkpoint_every=2", "keep_checkpoints=5", "method.name=ntp",
            "parallel=fsdp", *extra]


def _torchrun(args: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "remit.cli",
           "midtrain", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


@pytest.mark.dist
def test_fsdp_dcp_resume_on_two_and_one_process(make_cfg, tmp_path):
    from safetensors.torch import load_file

    from remit.midtrain import sharded
    from remit.midtrain.stage import run
    from remit.models import load_model

    full = make_cfg("ntp", out="full")
    _torchrun(_args(full, "checkpoint_async=true"))  # written in the background while training went on
    ckpt = Path(full.out_dir) / "checkpoints" / "step-00000002"
    assert sorted(p.name for p in (ckpt / "dcp").iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    assert not (ckpt / "model.pt").exists()  # no full state gathered to rank 0

    def stopped_after_2(name: str):
        cfg = make_cfg("ntp", out=name)
        shutil.copytree(ckpt, Path(cfg.out_dir) / "checkpoints" / ckpt.name)
        return cfg

    two = stopped_after_2("two")
    _torchrun(_args(two, "resume=true"))
    one = stopped_after_2("one")
    run(make_cfg("ntp", *_args(one, "resume=true")[5:], out="one"))  # this process: a world of one

    want, w_full = _losses(Path(full.out_dir)), load_file(str(Path(full.out_dir) / "model.safetensors"))
    for cfg, tol in ((two, 0.0), (one, 1e-6)):
        got = _losses(Path(cfg.out_dir))
        assert sorted(got) == list(range(3, STEPS + 1))  # resumed at step 3
        assert max(abs(got[s] - want[s]) for s in got) <= tol
        w = load_file(str(Path(cfg.out_dir) / "model.safetensors"))
        assert max(float((w[k] - w_full[k]).abs().max()) for k in w) <= tol  # tied lm_head: saved once
        assert json.loads((Path(cfg.out_dir) / "manifest.json").read_text())["steps"] == STEPS

    # an intermediate checkpoint as HF weights (learning curves), in one process
    hf = load_model(full.model.path, device="cpu")
    state = sharded.load_hf_state(Path(full.out_dir) / "checkpoints" / "step-00000004", hf)
    assert set(state) == set(hf.state_dict()) and not all(
        bool((state[k] == v).all()) for k, v in hf.state_dict().items())  # trained weights, every key


def test_save_dtype_writes_the_final_weights_in_that_dtype(make_cfg):
    import torch
    from safetensors.torch import load_file

    from remit.midtrain.stage import run

    fp32 = run(make_cfg("ntp", "max_steps=1", out="fp32"))
    bf16 = run(make_cfg("ntp", "max_steps=1", "save_dtype=bfloat16", out="bf16"))
    a, b = load_file(str(fp32 / "model.safetensors")), load_file(str(bf16 / "model.safetensors"))
    assert {v.dtype for v in a.values()} == {torch.float32} and {v.dtype for v in b.values()} == {torch.bfloat16}
    assert all(torch.equal(a[k].to(torch.bfloat16), b[k]) for k in a)  # the same weights, rounded once
    assert json.loads((bf16 / "config.json").read_text())["dtype"] == "bfloat16"  # what dtype="auto" loads
