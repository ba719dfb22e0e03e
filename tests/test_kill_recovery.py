"""kill -9 of a stage, then the same command again: it runs (no "in use by <dead pid>"), the killed run's
workers are gone, and no temp folder of the killed run is left anywhere.

The midtrain/score-reference equivalents (exact resume) are in tests/midtrain; these cover the other
stages. Each costs two stage runs (10-80 s on 2 busy cores): CI runs world, prepare-data with workers and
sft; ``REMIT_ALL_KILL_TESTS=1`` also runs the inline prepare-data, dpo, grpo, posttrain, eval and flywheel ones
(all pass: ``REMIT_ALL_KILL_TESTS=1 pytest tests/test_kill_recovery.py``, about 5 minutes). Each run is killed as soon as it has started writing (a ``.<name>.tmp-<pid>`` entry or a worker
process appears); if it finished before that, the test says so instead of passing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALL = pytest.mark.skipif(not os.environ.get("REMIT_ALL_KILL_TESTS"),
                         reason="two runs of a post-training/eval/flywheel stage: set REMIT_ALL_KILL_TESTS=1")
WORLD = ["n_pretrain_docs=200", "n_midtrain_docs=100", "n_sft=64", "n_rl=32", "n_eval=16", "difficulty=1"]


def _litter(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name
                  or p.name.endswith(".lock"))


def kill_then_rerun(args: list[str], root: Path, procs, *, want_workers: bool = False, ready=None, timeout: float = 120) -> None:
    """Start ``remit <args>``, kill -9 it mid-run, run the same command again: it must finish, leave no litter and
    no live worker. Post-training stages pass ``resume=true`` (as the flywheel does): without it a leftover TRL
    checkpoint is refused in one line, naming both ways out (resume or delete)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "remit.cli", *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=root)
    deadline = time.time() + timeout
    workers: list[int] = []
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed (rc {proc.returncode}): "
                        f"{proc.stderr.read().decode()[-1500:]}")
        workers = procs.children(proc.pid)
        if workers if want_workers else (ready() if ready else any(f".tmp-{proc.pid}" in p.name
                                                                    for p in root.rglob(".*"))):
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("the run never started writing")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    end = time.time() + 10
    while any(procs.alive(w) for w in workers) and time.time() < end:
        time.sleep(0.02)
    assert not [w for w in workers if procs.alive(w)], "the killed stage's workers outlived it"
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=root)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "in use by" not in res.stderr
    assert _litter(root) == []


def test_world(tmp_path, procs):
    # Large enough that writing the files (the only time its temp folder exists) takes longer than one poll:
    # a small world is written before the test can see it, and the run ends before it is killed.
    big = [*WORLD, "n_pretrain_docs=100000", "n_midtrain_docs=20000"]
    kill_then_rerun(["world", f"out_dir={tmp_path / 'w'}", *big], tmp_path, procs)
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["stage"] == "world"


@pytest.mark.slow
@pytest.mark.parametrize("num_proc", [pytest.param(1, marks=ALL), 2])
def test_prepare_data_both_engines(tmp_path, procs, tiny_tokenizer_dir, tiny_jsonl, num_proc):
    big = tmp_path / "big.jsonl"
    big.write_text(tiny_jsonl.read_text() * (40 if num_proc == 1 else 10))
    args = ["prepare-data", f"tokenizer={tiny_tokenizer_dir}", f"out_dir={tmp_path / 'cache'}",
            f"data.sources=[{{path: '{big}'}}]", "data.seq_len=32", f"data.num_proc={num_proc}"]
    # inline: killed once the first token shard is in place (datasets: once its workers run)
    kill_then_rerun(args, tmp_path, procs, want_workers=num_proc > 1, ready=lambda: any(tmp_path.rglob("shard-*.bin")))
    assert json.loads((tmp_path / "cache" / "manifest.json").read_text())["rows"] > 0


def _sft_data(tmp_path: Path) -> Path:
    rows = [{"prompt": f"What is {a} + 1?", "response": f"The answer is {a + 1}.", "answer": str(a + 1),
             "kind": "arith"} for a in range(32)]
    d = tmp_path / "data"
    d.mkdir()
    for name in ("sft", "rl", "eval"):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


@pytest.mark.slow
def test_sft(tmp_path, procs, tiny_model_dir):
    d = _sft_data(tmp_path)
    kill_then_rerun(["sft", f"model={tiny_model_dir}", f"data={d / 'sft.jsonl'}", f"out={tmp_path / 'sft'}",
                     "device=cpu", "max_steps=300", "batch_size=4", "resume=true"], tmp_path, procs,
                    # post-training writes its output folder only at the end (TRL trains beside it): killed once
                    # the stage holds its lock, the run cannot finish first however fast the machine is
                    ready=lambda: (tmp_path / ".sft.lock").exists() or (tmp_path / ".sft.trl").exists())
    assert json.loads((tmp_path / "sft" / "manifest.json").read_text())["stage"] == "sft"


@ALL
@pytest.mark.slow
@pytest.mark.parametrize("stage,extra", [
    ("dpo", ["max_steps=20", "batch_size=2", "limit=8", "samples_per_prompt=4", "max_new_tokens=8"]),
    ("grpo", ["max_steps=20", "batch_size=2", "num_generations=2", "max_completion_length=8"]),
])
def test_dpo_and_grpo(tmp_path, procs, tiny_model_dir, stage, extra):
    d = _sft_data(tmp_path)
    kill_then_rerun([stage, f"model={tiny_model_dir}", f"data={d / 'rl.jsonl'}", f"out={tmp_path / stage}",
                     "device=cpu", "resume=true", *extra], tmp_path, procs)
    assert json.loads((tmp_path / stage / "manifest.json").read_text())["stage"] == stage


@ALL
@pytest.mark.slow
def test_posttrain_chain(tmp_path, procs, tiny_model_dir):
    d = _sft_data(tmp_path)
    kill_then_rerun(["posttrain", f"model={tiny_model_dir}", f"data_dir={d}", f"out={tmp_path / 'post'}",
                     "device=cpu", "resume=true", "sft.max_steps=20", "sft.batch_size=4", "dpo.max_steps=2", "dpo.batch_size=2",
                     "dpo.limit=4", "dpo.samples_per_prompt=2", "dpo.max_new_tokens=8", "grpo.max_steps=2",
                     "grpo.batch_size=2", "grpo.num_generations=2", "grpo.max_completion_length=8",
                     *(f"{s}.eval.n=4" for s in ("sft", "dpo", "grpo"))], tmp_path, procs)
    assert (tmp_path / "post" / "grpo" / "manifest.json").is_file()


@ALL
@pytest.mark.slow
def test_eval(tmp_path, procs, tiny_model_dir):
    from remit.cli import main

    assert main(["world", f"out_dir={tmp_path / 'w'}", *WORLD]) == 0
    kill_then_rerun(["eval", f"model={tiny_model_dir}", "suite=world", f"world_dir={tmp_path / 'w'}", "limit=8",
                     "world_max_gen_toks=8", f"out_dir={tmp_path / 'ev'}"], tmp_path, procs,
                    ready=lambda: any(tmp_path.glob(".ev.lock")))
    assert (tmp_path / "ev" / "results.json").is_file()


@ALL
@pytest.mark.slow
def test_flywheel(tmp_path, procs):
    smoke = REPO / "configs" / "flywheel" / "smoke.yaml"
    # killed inside its first post-training stage (a temp folder of the sft stage appears)
    kill_then_rerun(["flywheel", "--config", str(smoke), f"runs_dir={tmp_path / 'runs'}", "report=false"], tmp_path, procs,
                    ready=lambda: any(p.name.startswith(".sft.tmp-") for p in tmp_path.rglob(".sft.tmp-*")),
                    timeout=400)
