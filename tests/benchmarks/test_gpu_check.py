"""``benchmarks/gpu_check.py --tiny``: the device check's code runs on CPU with only torch + transformers.

The check runs in a subprocess where datasets, TRL, lm-eval, accelerate and peft are made absent
(``sys.modules[name] = None``: imports fail and ``importlib.util.find_spec`` says "not installed"),
as on a GPU machine that has PyTorch and transformers only.
"""

from __future__ import annotations

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
    assert "| remit_online |" in proc.stdout  # the printed table
    res = json.loads(out.read_text())

    assert set(res) >= {"setup", "training", "token_logps_memory", "fsdp2_one_process", "generation", "goals",
                        "wall_s", "command", "noise_floor"}
    noise = res["noise_floor"]  # identical weights under one numerics policy: delta exactly 0
    assert noise["same_numerics"]["max_abs_delta"] == 0.0 and noise["same_numerics"]["weight_std"] == 0.0
    assert noise["bf16_weights"]["max_abs_delta"] > 0 and noise["bf16_vs_fp32_logps"]["max_abs_delta"] > 0
    methods = {"vanilla", "remit_online", "remit_cached", "rho1_online"}
    for mode in ("eager", "compiled"):
        assert set(res["training"][mode]) == methods
        for m in methods:
            r = res["training"][mode][m]
            assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < 10 and r["ratio_to_vanilla"] > 0
            assert 5.0 < r["first_loss"] < 9.0  # ~ln(1024) = 6.93 at random init
        assert res["training"][mode]["vanilla"]["ratio_to_vanilla"] == 1.0
    # Same seed, same batch: the compiled model's first loss is the eager one's.
    assert math.isclose(res["training"]["compiled"]["vanilla"]["first_loss"],
                        res["training"]["eager"]["vanilla"]["first_loss"], abs_tol=1e-4)
    f = res["fsdp2_one_process"]
    assert f["params_are_dtensors"] is True and f["backend"] == "gloo" and f["loss_abs_diff"] < 1e-5
    t = res["token_logps_memory"]
    assert t["vocab"] == 100352 and t["naive_extra_bytes"] > t["token_logps_extra_bytes"] > 0
    g = res["generation"]
    assert g["generated"] == g["batch"] * g["new_tokens"] and g["tokens_per_s"] > 0
    assert set(res["goals"]) == {"vanilla_mfu >= 0.40", "remit_online <= 1.33x", "remit_cached <= 1.03x",
                                 "token_logps <= 0.3x naive", "identical weights: delta exactly 0"}
    nums = dict(_numbers(res))
    assert nums and all(math.isfinite(v) for v in nums.values()), [k for k, v in nums.items() if not math.isfinite(v)]
    assert res["setup"]["device"] == "cpu" and res["setup"]["compile_backend"] == "aot_eager"
