"""score-reference: 2 processes (torchrun, gloo) write the same cache as 1; a bad shard is a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from remit.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def _args(ref_model_dir, tiny_jsonl, tmp_path, out: str, cache: str) -> list[str]:
    return [f"reference={ref_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=32",
            f"data.cache_dir={tmp_path / cache}", f"out_dir={tmp_path / out}", "shard_rows=8", "batch_size=3"]


def _score(args):
    from remit.config import load_config
    from remit.midtrain import score

    return score.run(load_config(score.ScoreConfig, None, args))


@pytest.mark.dist
def test_two_processes_write_the_one_process_cache(tmp_path, ref_model_dir, tiny_jsonl):
    one = _score(_args(ref_model_dir, tiny_jsonl, tmp_path, "one", "cache1"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "remit.cli",
           "score-reference", *_args(ref_model_dir, tiny_jsonl, tmp_path, "two", "cache2")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    two = tmp_path / "two"
    meta1, meta2 = (json.loads((d / "meta.json").read_text()) for d in (one, two))
    assert meta1 == meta2 and meta2["complete"]
    n = meta2["num_rows"]
    assert len(meta2["shards"]) == -(-n // 8) >= 4  # both ranks scored several shards
    assert [s["rows"] for s in meta2["shards"]] == [[lo, min(lo + 8, n)] for lo in range(0, n, 8)]
    for s in meta2["shards"]:
        assert (one / "shards" / s["file"]).read_bytes() == (two / "shards" / s["file"]).read_bytes()
    assert json.loads((two / "manifest.json").read_text())["processes"] == 2
    # the packed data was built once (by rank 0) and both ranks read it
    assert len(list((tmp_path / "cache2").glob("packed-*"))) == 1


def test_missing_or_truncated_shard_is_an_error_naming_it(tmp_path, ref_model_dir, tiny_jsonl):
    from remit.midtrain.reference import CachedReference

    out = _score(_args(ref_model_dir, tiny_jsonl, tmp_path, "ref", "cache"))
    good = CachedReference(out)
    assert good.files[2] == "shard-00002.npy" and good.num_rows == json.loads((out / "meta.json").read_text())["num_rows"]
    shard = out / "shards" / "shard-00002.npy"
    data = shard.read_bytes()
    shard.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"shard-00002\.npy: cut short: .*\(it holds rows 16-23\); the reference "
                                         r"cache .* is damaged: re-run `remit score-reference`") as e:
        CachedReference(out)
    assert "\n" not in str(e.value)
    shard.unlink()
    with pytest.raises(DataError, match=r"shard-00002\.npy: the shard is missing \(it holds rows 16-23\)"):
        CachedReference(out)
    # re-running the stage recomputes exactly that shard
    (out / "manifest.json").unlink()
    _score(_args(ref_model_dir, tiny_jsonl, tmp_path, "ref", "cache"))
    assert shard.read_bytes() == data
    assert np.load(shard).shape == (8, 32)
    # a cache whose meta.json predates the shard list reads by shard_rows; a list that disagrees is refused
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "shards"}))
    assert CachedReference(out).files == [s["file"] for s in meta["shards"]]
    (out / "meta.json").write_text(json.dumps({**meta, "shards": meta["shards"][:-1]}))
    with pytest.raises(DataError, match=r"meta\.json: the shards it lists do not cover rows"):
        CachedReference(out)


def test_a_cache_written_from_rows_reads_back(tmp_path):
    import numpy as np
    import torch

    from remit.midtrain.reference import CachedReference, write_rows_cache

    rows = np.arange(24, dtype=np.float32).reshape(4, 6) / -10
    cache = CachedReference(write_rows_cache(tmp_path / "c", rows))
    assert CachedReference.is_intact(tmp_path / "c")
    logps, _ = cache({"row_index": torch.tensor([2, 0]), "labels": torch.zeros(2, 6, dtype=torch.long)})
    assert torch.equal(logps, torch.from_numpy(rows[[2, 0]]))
