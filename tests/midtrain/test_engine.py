"""End-to-end runs of every method on a tiny Llama (hidden 32, seq 32), and the engine's invariants."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from remit.errors import ConfigError, TrainingError


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("method,extra", [
    ("ntp", []), ("remit", []), ("remit", ["method.frozen_base=true"]), ("rho1", []), ("kd", []),
    ("miniplm", []),
])
def test_method_runs_and_writes_loadable_checkpoint(make_cfg, tiny_model_dir, method, extra):
    from transformers import AutoModelForCausalLM

    from remit.manifest import is_complete, read_manifest
    from remit.midtrain.stage import run

    cfg = make_cfg(method, *extra)
    out = run(cfg)
    rec = metrics(out)
    assert [r["step"] for r in rec] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) and 5.0 < r["loss"] < 7.5 for r in rec)  # ~ln(512) at init
    assert rec[0]["tokens"] == 4 * 32 and rec[0]["lr"] > rec[-1]["lr"]  # annealing schedule
    if method == "remit":
        w = rec[-1]
        assert 0.8 <= w["w_mean"] <= 1.2 and w["w_std"] >= 0 and sum(w["w_hist"]) > 0
        assert {"w_frac_hi", "w_frac_lo", "delta_mean", "delta_std"} <= w.keys()
    if method == "rho1":
        assert rec[-1]["kept_fraction"] == pytest.approx(0.6, abs=0.05)
    model = AutoModelForCausalLM.from_pretrained(out)
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(model.parameters(), start.parameters()))
    assert moved > 1e-4
    assert read_manifest(out)["stage"] == "midtrain" and is_complete(out, cfg)
    assert (out / "config.yaml").is_file() and (out / "tokenizer.json").is_file()
    if method == "miniplm":
        assert read_manifest(out)["miniplm"]["docs_kept"] == math.ceil(0.5 * read_manifest(out)["miniplm"]["docs_scored"])


def test_remit_with_identical_reference_is_ntp(make_cfg, tiny_model_dir):
    """Reference == policy at step 1 => every weight is exactly 1 => ReMiT's first loss equals NTP's."""
    from remit.midtrain.stage import run

    ntp = metrics(run(make_cfg("ntp", "max_steps=1", out="ntp")))
    rem = metrics(run(make_cfg("remit", "max_steps=1", f"reference.path={tiny_model_dir}", out="rem")))
    assert rem[0]["loss"] == pytest.approx(ntp[0]["loss"], abs=1e-6)
    assert rem[0]["w_mean"] == 1.0 and rem[0]["w_std"] == 0.0
    # the plain NTP loss is logged for every method; for NTP it is the objective itself
    assert ntp[0]["nll"] == pytest.approx(ntp[0]["loss"], abs=1e-6) and rem[0]["nll"] == pytest.approx(ntp[0]["nll"])


def test_accumulation_1x8_equals_8x1(make_cfg):
    from remit.midtrain.stage import run

    # Adam's eps is raised from 1e-8 so that its first updates are not ~lr * sign(grad): with eps 1e-8,
    # float-summation noise (~1e-9) in gradients that are themselves ~1e-8 flips whole updates.
    common = ("optim.batch_size=8", "max_steps=2", "optim.eps=1e-4")
    a = run(make_cfg("remit", *common, "optim.micro_batch_size=8", out="a"))
    b = run(make_cfg("remit", *common, "optim.micro_batch_size=1", out="b"))
    assert [r["loss"] for r in metrics(a)] == pytest.approx([r["loss"] for r in metrics(b)], abs=1e-6)
    assert max_diff(weights(a), weights(b)) < 1e-6


def test_nan_stops_naming_the_step_and_keeps_last_checkpoint(make_cfg, monkeypatch):
    import dataclasses

    from remit.methods import get_method, register_method
    from remit.midtrain.checkpoint import latest
    from remit.midtrain.stage import run

    real = get_method("ntp")
    calls = {"n": 0}

    def poisoned(cfg):
        inner = real.build(cfg)

        class Poison(type(inner)):
            def __call__(self, inputs):
                out = inner(inputs)
                calls["n"] += 1
                if calls["n"] == 5:  # micro-batch 1 of step 3 (2 micro-batches per step)
                    out.loss_sum = out.loss_sum * float("nan")
                return out
        return Poison()

    monkeypatch.setattr("remit.methods.registry._REGISTERED", {})  # a fresh table, the real one back after the test
    monkeypatch.setattr("remit.methods.registry._REPLACED", {})
    register_method(dataclasses.replace(real, build=poisoned), replace=True)
    cfg = make_cfg("ntp", "checkpoint_every=1", "max_steps=6")
    with pytest.raises(TrainingError, match=r"step 3: the loss is nan.*last good checkpoint is .*step-00000002"):
        run(cfg)
    assert latest(Path(cfg.out_dir) / "checkpoints").name == "step-00000002"
    assert not (Path(cfg.out_dir) / "manifest.json").exists()


def test_cached_reference_matches_online_and_mismatch_names_part(make_cfg, tmp_path, ref_model_dir, tiny_model_dir,
                                                                  tiny_jsonl):
    from remit.config import load_config
    from remit.midtrain import score
    from remit.midtrain.stage import run

    scfg = load_config(score.ScoreConfig, None, [
        f"reference={ref_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=32",
        f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={tmp_path / 'refcache'}", "shard_rows=16"])
    cache = score.run(scfg)
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["complete"] and len(list((cache / "shards").glob("*.npy"))) == -(-meta["num_rows"] // 16)
    # Resumable: a deleted shard is recomputed identically, the others are skipped.
    import numpy as np
    first = np.load(cache / "shards" / "shard-00000.npy")
    (cache / "shards" / "shard-00000.npy").unlink()
    (cache / "manifest.json").unlink()
    score.run(scfg)
    assert np.array_equal(first, np.load(cache / "shards" / "shard-00000.npy"))

    online = metrics(run(make_cfg("remit", out="online")))
    cached = metrics(run(make_cfg("remit", f"reference.cache={cache}", out="cached")))
    for a, b in zip(online, cached):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["w_mean"] == pytest.approx(b["w_mean"], abs=1e-5)

    # A shard whose values were zeroed (header intact, right size) is refused at its first read, naming the
    # command that repairs it; that command re-scores exactly the damaged shard.
    from remit.errors import DataError

    f = cache / "shards" / "shard-00001.npy"
    good = np.load(f)
    raw = bytearray(f.read_bytes())
    raw[len(raw) - good.nbytes:] = bytes(good.nbytes)
    f.write_bytes(bytes(raw))
    assert np.load(f).shape == good.shape and not np.load(f).any()
    with pytest.raises(DataError, match=r"shard-00001.npy: the reference-cache shard is damaged .*score-reference"):
        run(make_cfg("remit", f"reference.cache={cache}", out="zeroed"))
    score.run(scfg)
    assert np.array_equal(np.load(f), good)

    with pytest.raises(ConfigError, match=r"reference differs \(reference: cache") as e:
        run(make_cfg("remit", f"reference.cache={cache}", f"reference.path={tiny_model_dir}", out="bad"))
    assert "tokenizer" not in str(e.value).split("(")[0] and "data" not in str(e.value).split("(")[0]
    with pytest.raises(ConfigError, match=r"data, packing differ"):
        run(make_cfg("remit", f"reference.cache={cache}", "data.max_tokens=2000", out="bad2"))


def test_pretrain_from_scratch_with_trained_tokenizer(tmp_path, tiny_jsonl):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from remit.config import load_config
    from remit.midtrain.stage import PretrainConfig, run_pretrain

    cfg = load_config(PretrainConfig, None, [
        f"out_dir={tmp_path / 'pre'}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=32",
        "model.tokenizer_vocab_size=300", "model.fresh.hidden_size=32", "model.fresh.num_layers=1",
        "optim.batch_size=4", "optim.micro_batch_size=4", "max_steps=12", "logging.every=1",
        "logging.progress=false", "optim.lr=1e-2"])
    out = run_pretrain(cfg)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert len(tok) == 300 and model.config.vocab_size == 300
    rec = metrics(out)
    assert rec[0]["loss"] == pytest.approx(math.log(300), abs=0.5)
    assert rec[-1]["loss"] < rec[0]["loss"] - 0.5  # it learns
    assert {r["lr"] for r in rec[1:]} == {1e-2}  # constant after warmup (5% of 12 steps = 1 step)
    from remit.manifest import read_manifest
    assert read_manifest(out)["stage"] == "pretrain"
    # A finished run with the same config is reused, not retrained.
    stamp = (out / "metrics.jsonl").stat().st_mtime_ns
    assert run_pretrain(cfg) == out and (out / "metrics.jsonl").stat().st_mtime_ns == stamp


def test_a_registered_method_that_needs_the_reference_gets_it(make_cfg, monkeypatch):
    """The run builder and the trainer follow Method.reference; the objective need not declare anything."""
    from remit.methods import Method, register_method
    from remit.midtrain.stage import run
    from remit.objectives.base import ObjectiveOutput, count, masked_nll_sum

    seen = []

    class UsesRef:  # a user's objective: no `needs` attribute, no base class
        def __call__(self, inputs):
            seen.append(inputs.ref_logps is not None and inputs.ref_logps.shape == inputs.policy_logps.shape)
            return ObjectiveOutput(masked_nll_sum(inputs.policy_logps, inputs.mask), count(inputs.mask), {})

    monkeypatch.setattr("remit.methods.registry._REGISTERED", {})
    register_method(Method(name="usesref", build=lambda cfg: UsesRef(), reference="logps"))
    run(make_cfg("usesref", "max_steps=1"))
    assert seen == [True, True]  # both micro-batches of the step


def test_two_identical_runs_save_identical_random_states(make_cfg, monkeypatch):
    import io
    import random

    import numpy as np

    import remit.midtrain.checkpoint as ckpt
    from remit.midtrain.stage import run

    saved, real = [], ckpt.save_checkpoint

    def capture(root, step, msd, osd, state, **kw):
        buf = io.BytesIO()
        torch.save(state, buf)  # the bytes of state.pt
        saved.append(buf.getvalue())
        return real(root, step, msd, osd, state, **kw)

    monkeypatch.setattr(ckpt, "save_checkpoint", capture)
    for i, name in enumerate(("a", "b")):
        random.seed(100 + i)  # whatever the process drew before the run
        np.random.seed(100 + i)
        run(make_cfg("ntp", "max_steps=2", "checkpoint_every=1", out=name))
    assert len(saved) == 2 and saved[0] == saved[1]
