"""A method registered from outside the package trains from the CLI, logs its statistics and is reported.

The plugin is ``posdecay_plugin.py`` next to this file: position-decay weights, a closed form to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SEQ = 32


def _remit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "remit.cli", "--plugin", "posdecay_plugin", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_registered_method_trains_logs_and_is_reported(tmp_path, tiny_model_dir, tiny_jsonl):
    run_dir = tmp_path / "run"
    out = run_dir / "midtrain-posdecay"
    res = _remit("midtrain", f"model.path={tiny_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]",
                 f"data.seq_len={SEQ}", f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={out}",
                 "optim.batch_size=4", "optim.micro_batch_size=2", "max_steps=3", "logging.every=1",
                 "logging.progress=false", "logging.tensorboard=false", "checkpoint_every=0", "logging.hist_bins=4",
                 "method.name=posdecay", "method.params={decay: 0.25}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    weights = [0.25 ** (t / (SEQ - 1)) for t in range(SEQ)]  # every position of a packed row is counted
    for r in lines:
        assert r["w_mean"] == pytest.approx(sum(weights) / SEQ, abs=1e-6)
        assert r["w_hist_range"] == [0.25, 1.0] and len(r["w_hist"]) == 4 and sum(r["w_hist"]) == 4 * SEQ
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "posdecay" and manifest["config"]["method"]["params"] == {"decay": 0.25}

    # Without the plugin the name is refused in one line, listing the known methods.
    env = {k: v for k, v in os.environ.items() if k != "REMIT_PLUGINS"}
    bare = subprocess.run([sys.executable, "-m", "remit.cli", "midtrain", f"model.path={tiny_model_dir}",
                           "data.sources=[{path: x.jsonl}]", "method.name=posdecay"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert bare.returncode == 2 and "method.name='posdecay' is not a known method" in bare.stderr
    assert "Traceback" not in bare.stderr

    rep = _remit("report", f"run_dir={run_dir}", "dynamics=false", "heatmap=false", "guidance=false", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr[-2000:]
    md = (run_dir / "report.md").read_text()
    section = md.split("## Token weights during training")[1].split("\n## ")[0]
    assert "| midtrain-posdecay | posdecay | w_mean |" in section
    assert "mean position weight (closed form" in section  # the description the method registered
    assert f"{sum(weights) / SEQ:.4f}" in section
    assert (run_dir / "report" / "weights_over_training.png").is_file()
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    stats = summary["sections"]["Token weights during training"]["midtrain-posdecay"]
    assert stats["method"] == "posdecay" and stats["last"]["w_mean"] == pytest.approx(sum(weights) / SEQ, abs=1e-6)
