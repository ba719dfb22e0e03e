"""``benchmarks/gpu_check.py --tiny``: the device check's code runs on CPU with only torch + transformers.

The check runs in a subprocess where datasets, TRL, lm-eval, accelerate and peft are made absent
(``sys.modules[name] = None``: imports fail and ``importlib.util.find_spec`` says "not installed"),
as on a GPU machine that has PyTorch and transformers only.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ("datasets", "trl", "lm_eval", "accelerate", "peft", "deepspeed", "wandb", "tensorboard")

RUNNER = """
import runpy, sys
for name in {absent!r}:
    sys.modules[name] = None
sys.argv = ["gpu_check.py", "--tiny", "--out", {out!r}]
runpy.run_path({script!r}, run_name="__main__")
loaded = sorted(n for n in {absent!r} if sys.modules.get(n) is not None)
print("LOADED", loaded)
"""


def _numbers(x, path=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(x, bool):
        return
    elif isinstance(x, (int, float)):
        yield path, x


def test_gpu_check_tiny_runs_without_datasets_trl_lm_eval(tmp_path):
    out = tmp_path / "gpu_tiny.json"
    code = RUNNER.format(absent=ABSENT, out=str(out), script=str(ROOT / "benchmarks" / "gpu_check.py"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED []" in proc.stdout
    res = json.loads(out.read_text())

    sections = ("training", "step_memory", "numerics", "fsdp2", "scoring", "generation")
    assert res["errors"] == {} and all(res["sections"][s].startswith("ok") for s in sections), res["sections"]
    methods = {"vanilla", "remit_online", "remit_online_refmb", "remit_cached", "rho1_online"}
    for mode in ("eager", "compiled"):
        assert set(res["training"][mode]) == methods
        for m in methods:
            r = res["training"][mode][m]
            assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < 10 and r["ratio_to_vanilla"] > 0
            assert 5.0 < r["first_loss"] < 9.0  # ~ln(1024) = 6.93 at random init
        assert res["training"][mode]["vanilla"]["ratio_to_vanilla"] == 1.0
    assert res["training"]["accum"] == 2  # each step accumulates micro-batches
    # Same seed, same batches: the compiled model's first loss is the eager one's.
    assert math.isclose(res["training"]["compiled"]["vanilla"]["first_loss"],
                        res["training"]["eager"]["vanilla"]["first_loss"], abs_tol=1e-4)
    m = res["step_memory"]
    assert m["model_loss_extra_bytes"] > m["remit_extra_bytes"] > 0
    n = res["numerics"]
    assert n["weight_std"] == 0.0 and n["delta_abs_mean"] == 0.0  # CPU: fp32 policy and reference, same weights
    assert 0 < n["adamw"]["bf16_lost_update_fraction"] <= 1  # bf16 weights lose small updates; fp32 does not
    f = res["fsdp2"]
    assert f["ok"] is True and f["params_are_dtensors"] and f["resumed_vs_continued_max_diff"] == 0.0
    assert f["continued_losses"] != f["fsdp_losses"]
    assert all(v["tokens_per_s"] > 0 and v["gpu_hours_10B_tokens"] > 0 for v in res["scoring"].values())
    assert set(res["generation"]) == {"lm_eval", "grpo"}
    assert all(g["generated"] == g["batch"] * g["new_tokens"] for g in res["generation"].values())
    assert set(res["goals"]) == {"remit_online <= 1.33x vanilla", "remit_cached <= 1.03x vanilla",
                                 "log-prob extra peak <= 0.3x model loss", "numerics floor weight std < 0.005"}
    assert all(isinstance(v, bool) for v in res["goals"].values())
    nums = dict(_numbers(res))
    assert nums and all(math.isfinite(v) for v in nums.values()), [k for k, v in nums.items() if not math.isfinite(v)]
    assert res["setup"]["device"] == "cpu" and res["setup"]["compile_backend"] == "aot_eager"


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fsdp_check_fails_on_a_planted_bug(tmp_path, monkeypatch):
    """A resume that loads the weights but not AdamW's moments: the FSDP2 check must say so."""
    from remit.midtrain import sharded

    real = sharded.load

    def forgets_the_optimizer(path, policy, optimizer, world):
        state = real(path, policy, optimizer, world)
        optimizer.state.clear()
        return state

    monkeypatch.setattr(sharded, "load", forgets_the_optimizer)
    res = _gpu_check().main(["--tiny", "--sections", "fsdp2", "--out", str(tmp_path / "r.json")])
    f = res["fsdp2"]
    assert f["ok"] is False and f["fsdp_vs_unsharded_max_diff"] == 0.0
    assert f["resumed_weights_max_diff"] > 100 * f["tolerance"]


def test_sections_fail_alone_and_the_budget_skips(tmp_path, monkeypatch):
    gc = _gpu_check()

    def broken(ctx):
        raise RuntimeError("planted")

    monkeypatch.setattr(gc, "SECTIONS", (("numerics", broken), ("scoring", gc.section_scoring)))
    out = tmp_path / "r.json"
    res = gc.main(["--tiny", "--out", str(out)])
    assert res["sections"]["numerics"] == "failed" and "RuntimeError: planted" in res["errors"]["numerics"]
    assert res["sections"]["scoring"].startswith("ok") and json.loads(out.read_text())["scoring"]
    assert res["goals"]["numerics floor weight std < 0.005"] is None
    res = gc.main(["--tiny", "--budget-s", "0", "--out", str(out)])
    assert set(res["sections"].values()) == {"skipped (budget)"}
    assert json.loads(out.read_text())["sections"] == res["sections"]  # written even when nothing ran
