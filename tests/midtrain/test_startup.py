"""Start-up on 2 processes (torchrun, gloo, CPU): the data is hashed once per job (and not again by the
next job), ranks other than 0 only open the cache, and a rank without the shared folder stops with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _launch(out: Path, model: Path, data: Path, *extra: str) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rank*.json"):
        old.unlink()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests/midtrain/startup_worker.py"), str(out), str(model), str(data), *extra]
    subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.dist
def test_startup_hashes_once_and_only_rank0_builds(tmp_path, tiny_model_dir, tiny_jsonl):
    data = tmp_path / "data.jsonl"
    data.write_bytes(tiny_jsonl.read_bytes())
    first = _launch(tmp_path, tiny_model_dir, data)
    assert [r["errors"] for r in first] == [[], []]
    assert [r["hashed_files"] for r in first] == [1, 0]  # rank 0 hashed the one file; rank 1 got its key
    assert first[0]["fingerprint"] == first[1]["fingerprint"] and first[0]["rows"] == first[1]["rows"] > 0

    # the next job (a resume) reads the memo; rank 1 on a "node" without the shared cache stops with one line
    second = _launch(tmp_path, tiny_model_dir, data, "private")
    assert second[0]["hashed_files"] == 0 and second[1]["hashed_files"] == 0
    assert second[0]["fingerprint"] == first[0]["fingerprint"]
    shared_err, missing_err = second[1]["errors"]
    assert "is not shared by all processes" in shared_err and "rank 1" in shared_err
    assert [e.split(" is not shared")[1] for e in second[0]["errors"]] == [shared_err.split(" is not shared")[1]]
    assert "remit prepare-data" in missing_err and str(tmp_path / "cache-rank1") in missing_err
    assert "\n" not in missing_err
    assert not (tmp_path / "cache-rank1").exists() or not any((tmp_path / "cache-rank1").rglob("shard-*"))
