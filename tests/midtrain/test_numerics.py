"""One numerics policy: the frozen models (reference online or cached, frozen base, MiniPLM scorer) compute
log-probs under exactly the policy forward's numerics, so identical weights give weight exactly 1.

The CUDA decision is checked without a GPU: ``perf.numerics`` is a pure function of (precision, device),
and ``_load_frozen`` is run with a "cuda" world whose model loading is recorded (and kept on the CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "cpu"])
@pytest.mark.parametrize("precision", ["auto", "bf16", "fp32"])
def test_every_model_of_a_run_gets_fp32_weights_and_the_policy_autocast(precision, device):
    from remit.midtrain import perf
    from remit.midtrain.config import PerfConfig

    weights, autocast = perf.numerics(precision, device)
    assert weights == "float32"  # the policy's master weights: a bf16 frozen model would not match its forward
    bf16 = precision == "bf16" or (precision == "auto" and device.startswith("cuda"))
    assert autocast == (torch.bfloat16 if bf16 else None)
    assert perf.autocast_dtype(PerfConfig(precision=precision), device) == autocast
    assert perf.numerics_key(precision, device) == f"float32 weights, {'bfloat16' if bf16 else 'no'} autocast"


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp32"])
def test_frozen_model_on_cuda_is_loaded_like_the_policy(make_cfg, tiny_model_dir, tiny_tokenizer, monkeypatch,
                                                         precision):
    """The decision ``_load_frozen`` takes for a CUDA device (before: bf16 weights under bf16 autocast)."""
    from remit.midtrain import setup
    from remit.midtrain.distributed import World
    from remit.models import load_model

    seen = []

    def record(path, *, dtype=None, device=None):
        seen.append((dtype, device))
        return load_model(path, dtype=dtype, device="cpu")

    monkeypatch.setattr(setup, "load_model", record)
    cfg = make_cfg("remit", f"perf.precision={precision}")
    policy = load_model(tiny_model_dir, dtype="float32", device="cpu")
    ref = setup._load_frozen(str(tiny_model_dir), World(device="cuda"), tiny_tokenizer, policy, True, None, cfg)
    assert seen == [("float32", "cuda")]
    assert next(ref.net.parameters()).dtype == torch.float32
    assert ref.autocast_dtype == (None if precision == "fp32" else torch.bfloat16)


def _padded_model_dir(tmp_path: Path, tokenizer, extra_rows: int) -> Path:
    """The tiny Llama with ``extra_rows`` output rows beyond the tokenizer (as OLMo-2's 100352 vs 100278)."""
    from remit.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer) + extra_rows, hidden_size=32, num_layers=2, num_heads=4,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():  # padding rows that a real model would give some probability mass
        model.get_output_embeddings().weight[len(tokenizer):] += 0.5
    out = tmp_path / "padded"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("extra", [[], ["method.frozen_base=true"], ["reference.check=false"],
                                   ["data.cross_document_attention=false", "perf.reference_micro_batch_size=4"]])
def test_identical_reference_gives_weight_exactly_one(make_cfg, tmp_path, tiny_tokenizer, precision, extra):
    """Policy = reference (and = frozen base), a padded vocabulary, under fp32 and CPU bf16 autocast."""
    from remit.midtrain.stage import run

    padded = _padded_model_dir(tmp_path, tiny_tokenizer, extra_rows=24)
    rec = metrics(run(make_cfg("remit", "max_steps=1", f"model.path={padded}", f"reference.path={padded}",
                               f"perf.precision={precision}", *extra)))
    assert rec[0]["w_mean"] == 1.0 and rec[0]["w_std"] == 0.0 and rec[0]["delta_std"] == 0.0


def test_policy_and_reference_normalise_over_the_tokenizer_rows(tmp_path, tiny_tokenizer):
    """The vocabulary limit applies to the policy as to the frozen models: padding rows get no mass."""
    from remit.midtrain.reference import PolicyLogps
    from remit.models import check_vocab_rows, load_model

    model = load_model(_padded_model_dir(tmp_path, tiny_tokenizer, extra_rows=24), dtype="float32", device="cpu")
    limit = check_vocab_rows(model, tiny_tokenizer, "the policy")
    assert limit == len(tiny_tokenizer)
    ids = torch.randint(0, len(tiny_tokenizer), (2, 12), generator=torch.Generator().manual_seed(0))
    logps, _ = PolicyLogps(model, vocab_limit=limit)(ids[:, :-1], ids[:, 1:])
    logits = model(ids[:, :-1]).logits[..., :len(tiny_tokenizer)].double()
    want = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
    assert torch.allclose(logps.double(), want, atol=1e-5)


def test_cached_reference_under_bf16_gives_weight_exactly_one(make_cfg, tmp_path, tiny_model_dir, tiny_jsonl):
    """score-reference under the run's precision: identical models, bf16 autocast, cached = weight 1."""
    from remit.config import load_config
    from remit.midtrain import score
    from remit.midtrain.stage import run

    scfg = load_config(score.ScoreConfig, None, [
        f"reference={tiny_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=32",
        f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={tmp_path / 'refcache'}", "precision=bf16",
        "batch_size=2"])
    cache = score.run(scfg)
    assert json.loads((cache / "meta.json").read_text())["fingerprint"]["numerics"] == "float32 weights, bfloat16 autocast"
    rec = metrics(run(make_cfg("remit", "max_steps=1", f"reference.path={tiny_model_dir}", f"reference.cache={cache}",
                               "perf.precision=bf16", out="cached")))
    assert rec[0]["w_mean"] == 1.0 and rec[0]["w_std"] == 0.0
    from remit.errors import ConfigError
    with pytest.raises(ConfigError, match=r"numerics differs \(numerics: cache float32 weights, bfloat16 autocast "
                                          r"vs run float32 weights, no autocast\)"):
        run(make_cfg("remit", f"reference.cache={cache}", f"reference.path={tiny_model_dir}", "perf.precision=fp32",
                     out="fp32"))


def test_a_bf16_weight_reference_is_noise_the_policy_removes(tiny_model_dir):
    """What the policy fixes, measured: bf16 weights under bf16 autocast vs the fp32-weight policy forward."""
    from remit.midtrain.reference import OnlineReference, PolicyLogps
    from remit.models import load_model
    from remit.objectives.remit import remit_weights

    ids = torch.randint(0, 512, (4, 33), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    policy = PolicyLogps(load_model(tiny_model_dir, dtype="float32", device="cpu"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pol, _ = policy(batch["input_ids"], batch["labels"])
    std = {}
    for weights in ("float32", "bfloat16"):
        ref = OnlineReference(load_model(tiny_model_dir, dtype=weights, device="cpu"), autocast_dtype=torch.bfloat16)
        w = remit_weights(ref(batch)[0], pol.detach(), torch.ones_like(pol, dtype=torch.bool))
        std[weights] = float(w.std())
    # tiny random model (near-uniform logits): 2.4e-4 measured; trained models far more (issue #20: 0.024-0.041)
    assert std["float32"] == 0.0 and std["bfloat16"] > 2e-5


def test_document_masking_reaches_the_training_forward(make_cfg):
    """data.cross_document_attention=false changes the first loss (same weights, same rows)."""
    from remit.midtrain.stage import run

    on = metrics(run(make_cfg("ntp", "max_steps=1", out="on")))[0]["loss"]
    off = metrics(run(make_cfg("ntp", "max_steps=1", "data.cross_document_attention=false", out="off")))[0]["loss"]
    assert abs(on - off) > 1e-4


def test_miniplm_scores_documents_with_document_masking(make_cfg, monkeypatch):
    """MiniPLM's scorers get the restarting position ids too (its selection runs and trains)."""
    import math

    from remit.manifest import read_manifest
    from remit.midtrain import reference
    from remit.midtrain.stage import run

    seen, real = [], reference.OnlineReference.__call__
    monkeypatch.setattr(reference.OnlineReference, "__call__",
                        lambda self, batch: seen.append("position_ids" in batch) or real(self, batch))
    out = run(make_cfg("miniplm", "max_steps=1", "data.cross_document_attention=false"))
    assert seen and all(seen)  # the weak model and the reference scored every batch document-masked
    info = read_manifest(out)["miniplm"]
    assert info["docs_kept"] == math.ceil(0.5 * info["docs_scored"]) and metrics(out)[0]["loss"] > 0
