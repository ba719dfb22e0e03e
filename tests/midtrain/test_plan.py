"""``remit plan``: offline, from metadata only; FLOPs and GPU-hours checked against closed forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remit.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"
TRAINING_RECIPES = sorted(p.name for p in RECIPES.glob("*-remit.yaml"))


@pytest.mark.parametrize("recipe", TRAINING_RECIPES)
def test_plan_runs_offline_for_every_training_recipe(recipe, tmp_path, monkeypatch):
    from remit.midtrain import plan

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config(plan.PlanConfig, RECIPES / recipe, [f"plan.out={tmp_path / 'plan.json'}"])
    assert plan.run(cfg) == str(tmp_path / "plan.json")
    got = json.loads((tmp_path / "plan.json").read_text())
    assert got["train_tokens"] >= 10 ** 10 and all(v > 0 for v in got["gpu_hours"].values())
    assert got["packed_tokens"] == got["train_tokens"] + 1  # the recipe reads and scores what it uses
    assert sum(s["used"] for s in got["sources"]) == got["packed_tokens"]


def test_olmo2_1b_numbers_match_the_closed_form():
    """OLMo-2 1B at 10B tokens, 25% MFU of 989 TFLOP/s: ~104 GPU-h vanilla, ~139 online (issue #20)."""
    from remit.midtrain import plan

    p = plan.param_counts(plan.KNOWN_SHAPES["allenai/OLMo-2-0425-1B"])
    assert p["total"] == pytest.approx(1.485e9, rel=2e-3)  # the released model's parameter count
    cfg = load_config(plan.PlanConfig, RECIPES / "olmo2-1b-remit.yaml")
    got = plan.make_plan(cfg)
    L, h, s = 16, 2048, 4096
    train = 6 * p["flops"] + 12 * L * h * s
    frozen = 2 * p["flops"] + 4 * L * h * s
    rate = 989e12 * 0.25 * 3600
    T = got["train_tokens"]
    assert got["gpu_hours"]["vanilla"] == pytest.approx(T * train / rate)
    assert got["gpu_hours"]["online"] == pytest.approx(T * (train + frozen) / rate)
    assert got["gpu_hours"]["cached"] == pytest.approx((T * train + got["rows"] * s * frozen) / rate)
    assert 100 < got["gpu_hours"]["vanilla"] < 110 and 135 < got["gpu_hours"]["online"] < 145
    mem = got["memory_bytes_per_gpu"]
    assert mem["weights_grads_adam"] == pytest.approx(16 * p["total"] / 8) and mem["frozen_models"] == 4 * p["total"]


def test_plan_reads_file_sizes_not_data(tmp_path, tiny_model_dir):
    """A local source full of bad JSON plans fine: only its size is read; a token file is sized exactly."""
    import numpy as np

    from remit.midtrain import plan

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{not json\n" * 4000)
    ids = tmp_path / "ids.npy"
    np.zeros(5000, np.uint16).tofile(ids)
    cfg = load_config(plan.PlanConfig, None, [
        f"model.path={tiny_model_dir}", "data.seq_len=32", "data.max_tokens=3001", "token_budget=3000",
        f"data.sources=[{{path: '{bad}', weight: 2}}, {{path: '{ids}', kind: tokens, dtype: uint16}}]",
        "optim.batch_size=4", "optim.micro_batch_size=2"])
    got = plan.make_plan(cfg)
    a, b = got["sources"]
    assert (a["used"], b["used"]) == (2001, 1000) and a["holds"] == 40000 // 4 and b["holds"] == 5000
    assert got["params"]["vocab"] == 512 and "plan: " not in plan.format_plan(got)


def test_cli_plan_prints_the_table(capsys):
    from remit.cli import main

    assert main(["plan", "--config", str(RECIPES / "olmo2-1b-remit.yaml")]) in (0, None)
    out = capsys.readouterr().out
    assert "online ReMiT" in out and "GPU-hours at 25% MFU" in out and "allenai/dolmino-mix-1124 [dclm]" in out


def test_plan_counts_what_the_configured_path_loads_and_stores(tmp_path, tiny_model_dir):
    """The cached path loads no frozen reference; loss masks are on disk; a capped folder is a sample."""
    from remit.midtrain import plan

    folder = tmp_path / "math"
    folder.mkdir()
    for k in range(3):
        (folder / f"part-{k}.jsonl").write_bytes(b"x" * 4000)  # 1,000 tokens each at 4 bytes per token
    chat = tmp_path / "chat.jsonl"
    chat.write_bytes(b"x" * 4000)
    base = [f"model.path={tiny_model_dir}", "data.seq_len=32", "data.max_tokens=2001", "token_budget=2000",
            f"data.sources=[{{path: '{folder}'}}, {{path: '{chat}', kind: chat, loss: assistant}}]",
            "optim.batch_size=4", "optim.micro_batch_size=2", "method.name=remit", f"reference.path={tiny_model_dir}"]
    online = plan.make_plan(load_config(plan.PlanConfig, None, base))
    cached = plan.make_plan(load_config(plan.PlanConfig, None, base + [f"reference.cache={tmp_path / 'cache'}"]))
    n = online["params"]["total"]
    assert online["memory_bytes_per_gpu"]["frozen_models"] == 4 * n
    assert cached["memory_bytes_per_gpu"]["frozen_models"] == 0
    a, b = online["sources"]
    assert (a["read"], b["read"]) == (1001, 1000)
    assert online["disk_bytes"]["token_shards"] == (1001 + 1000) * 2 + 1000  # uint16 ids + the uint8 loss mask
    assert any("math: capped at 1,001 of about 3,000 tokens in 3 files" in x for x in online["notes"])
    assert not any("chat.jsonl: capped" in x for x in online["notes"])  # one file: nothing to sample across
