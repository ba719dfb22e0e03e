"""FSDP2 options on 2 processes (torchrun, gloo, CPU): the embedding and the LM head are units of their own,
bf16 parameters (fp32 reductions) stay within bf16 rounding of the fp32 losses, and reduce-scattering every
micro-batch gives the same losses while holding sharded instead of unsharded gradients between micro-batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.dist
def test_fsdp_options(tmp_path, tiny_tokenizer_dir):
    out = tmp_path / "fsdp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests/midtrain/fsdp_worker.py"), str(out), str(tiny_tokenizer_dir)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    base, bf16, every = r["default"], r["bf16"], r["reduce_every"]
    # units: embedding, 2 decoder layers, LM head, root
    assert base["units"] == ["FSDPEmbedding", "FSDPLinear", "FSDPLlamaDecoderLayer", "FSDPLlamaDecoderLayer",
                             "FSDPPolicyLogps"]
    assert base["losses"][0] > 5 and base["losses"][-1] < base["losses"][0]  # it trains
    assert every["losses"] == pytest.approx(base["losses"], abs=1e-6)
    assert bf16["losses"] == pytest.approx(base["losses"], abs=2e-2) and bf16["losses"] != base["losses"]
    # between micro-batches: accumulate unsharded gradients (default) or hold only reduce-scattered shards
    kept, shard = base["between_micro_batches"], every["between_micro_batches"]
    assert kept["unsharded_grad_bytes"] > 0 and kept["sharded_grad_bytes"] == 0
    assert shard["unsharded_grad_bytes"] == 0 and shard["sharded_grad_bytes"] > 0
    assert shard["sharded_grad_bytes"] * 2 == pytest.approx(kept["unsharded_grad_bytes"], rel=0.05)  # 1/N of it
