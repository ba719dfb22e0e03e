"""The speed / memory options (``perf.*``): each trains and gives the loss of the run without it.

Tolerances (fp32 on CPU, tiny Llama, 4 optimizer steps of 4 x 32 tokens; measured max |loss diff| in
brackets): fused AdamW, activation checkpointing, a larger reference micro-batch: 1e-6 (0.0, 0.0, 0.0:
same math, other kernels / summation order); torch.compile: 1e-5 (2.4e-7: inductor fuses and reorders
float ops); bf16 autocast: 5e-3 nats (1.9e-4: 7 mantissa bits in the matmuls; log-probs and loss stay fp32).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from remit.errors import ConfigError


def losses(out: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def baseline(make_cfg):
    from remit.midtrain.stage import run

    cache: dict[str, list[float]] = {}

    def get(method: str, *extra: str) -> list[float]:
        key = method + " ".join(extra)
        if key not in cache:
            cache[key] = losses(run(make_cfg(method, *extra, out=f"base-{method}")))
        return cache[key]

    return get


@pytest.mark.parametrize("override,msg", [
    ("perf.precision=fp16", r"perf.precision"),
    ("perf.reference_micro_batch_size=0", r"perf.reference_micro_batch_size=0"),
])
def test_bad_values_name_the_key(make_cfg, override, msg):
    with pytest.raises(ConfigError, match=msg):
        make_cfg("ntp", override)


def test_kd_refuses_a_larger_reference_micro_batch(make_cfg):
    from remit.midtrain.stage import run

    with pytest.raises(ConfigError, match=r"perf.reference_micro_batch_size applies to log-prob references"):
        run(make_cfg("kd", "perf.reference_micro_batch_size=4"))


def test_fused_adamw_same_losses_and_weights(make_cfg, baseline, monkeypatch):
    from remit.midtrain import trainer
    from remit.midtrain.stage import run

    seen = []
    real = torch.optim.AdamW

    def spy(*a, **kw):
        seen.append(kw.get("fused"))
        return real(*a, **kw)

    monkeypatch.setattr(trainer.torch.optim, "AdamW", spy)
    fused = losses(run(make_cfg("ntp", "perf.fused_adamw=true", out="fused")))
    assert seen == [True]
    assert fused == pytest.approx(baseline("ntp"), abs=1e-6)


def test_activation_checkpointing_recomputes_and_keeps_the_loss(make_cfg, baseline, tiny_model_dir):
    from remit.midtrain.config import PerfConfig
    from remit.midtrain.perf import apply_to_model, decoder_layers
    from remit.midtrain.reference import PolicyLogps
    from remit.midtrain.stage import run
    from remit.models import load_model

    # The MLP of every layer runs twice per step (forward + recompute in backward) with checkpointing.
    def mlp_calls(ac: bool) -> int:
        model = apply_to_model(load_model(tiny_model_dir, dtype="float32"), PerfConfig(activation_checkpointing=ac))
        model.train()
        n = [0]
        for layer in decoder_layers(model):  # a counting forward (module hooks do not fire in the recompute)
            layer.mlp.forward = (lambda f: lambda *a, **k: (n.__setitem__(0, n[0] + 1), f(*a, **k))[1])(
                layer.mlp.forward)
        ids = torch.randint(0, 100, (2, 16))
        PolicyLogps(model)(ids, ids)[0].sum().backward()
        return n[0]

    assert (mlp_calls(False), mlp_calls(True)) == (2, 4)
    ac = losses(run(make_cfg("remit", "perf.activation_checkpointing=true", out="ac")))
    assert ac == pytest.approx(baseline("remit"), abs=1e-6)


def test_bf16_autocast_close_to_fp32_with_fp32_logps(make_cfg, baseline, tiny_model_dir):
    from remit.midtrain.reference import PolicyLogps
    from remit.midtrain.stage import run
    from remit.models import load_model
    from remit.utils.integrations import autocast

    model = load_model(tiny_model_dir, dtype="float32")
    ids = torch.randint(0, 100, (2, 16))
    with autocast("cpu", torch.bfloat16):
        logps, _ = PolicyLogps(model)(ids, ids)
    assert logps.dtype == torch.float32

    bf16 = losses(run(make_cfg("remit", "perf.precision=bf16", out="bf16")))
    ref = baseline("remit")
    assert bf16 == pytest.approx(ref, abs=5e-3)
    assert max(abs(a - b) for a, b in zip(bf16, ref)) > 1e-5  # it did run in bf16


def test_larger_reference_micro_batch_same_loss_and_fewer_forwards(make_cfg, baseline, monkeypatch):
    from remit.midtrain import reference
    from remit.midtrain.stage import run

    rows = []
    real = reference.OnlineReference.__call__

    def spy(self, batch):
        rows.append(int(batch["input_ids"].shape[0]))
        return real(self, batch)

    monkeypatch.setattr(reference.OnlineReference, "__call__", spy)
    common = ("optim.micro_batch_size=1", "method.frozen_base=true")
    big = losses(run(make_cfg("remit", *common, "perf.reference_micro_batch_size=3", out="refmb")))
    # per step: 4 rows scored as 3 + 1 by the reference and again by the frozen base, 4 steps
    assert rows == [3, 1, 3, 1] * 4
    rows.clear()
    assert big == pytest.approx(baseline("remit", *common), abs=1e-6)
    assert rows == [1] * 8 * 4


def test_score_rows_equals_per_micro_batch(tiny_model_dir):
    from remit.midtrain.reference import OnlineReference, score_rows
    from remit.models import load_model

    ref = OnlineReference(load_model(tiny_model_dir, dtype="float32"))
    g = torch.Generator().manual_seed(0)
    mbs = [{"input_ids": torch.randint(0, 100, (n, 12), generator=g),
            "labels": torch.randint(0, 100, (n, 12), generator=g)} for n in (2, 1, 3)]
    got = score_rows(ref, mbs, 4, torch.device("cpu"))
    assert [x.shape[0] for x, _ in got] == [2, 1, 3]
    for (x, _), mb in zip(got, mbs):
        assert torch.allclose(x, ref(mb)[0], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_compile_same_losses(make_cfg, baseline, monkeypatch):
    """Cold inductor compiles (training and inference graphs) take a minute or two on a busy CPU (cached afterwards)."""
    from remit.midtrain import perf
    from remit.midtrain.stage import run

    compiled = []
    real = perf.compile_module
    monkeypatch.setattr(perf, "compile_module",
                        lambda m, backend=None: (compiled.append((type(m).__name__, backend)), real(m, backend)))
    out = losses(run(make_cfg("remit", "perf.compile=true", out="compiled")))
    # the policy's 2 layers, then the frozen reference's 2, with the default backend (inductor)
    assert compiled == [("LlamaDecoderLayer", None)] * 4
    assert out == pytest.approx(baseline("remit"), abs=1e-5)
