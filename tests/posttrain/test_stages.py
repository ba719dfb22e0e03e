"""SFT -> DPO -> GRPO on a tiny random-init Llama (1-2 steps each), run once per module (TRL loads once).

Checks: every stage writes a loadable HF checkpoint whose tokenizer/vocabulary match the base
(so `remit midtrain` accepts the result as a reference), the manifests record what happened
(pairs, rewards, steps), finished stages are not re-run, and a changed stage config re-runs
only that stage.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from remit.config import load_config
from remit.manifest import read_manifest
from remit.posttrain.chain import PosttrainConfig, run
from remit.posttrain.launch import scratch_dir

pytestmark = pytest.mark.xdist_group("posttrain_trl")

FAKE = "posttrain_helpers"


def chain_overrides(model: Path, data: Path, out: Path) -> list[str]:
    return [
        f"model={model}", f"data_dir={data}", f"out={out}", "device=cpu",
        "sft.max_steps=2", "sft.batch_size=4", "sft.logging_steps=1",
        "dpo.max_steps=2", "dpo.batch_size=2", "dpo.limit=4", "dpo.samples_per_prompt=4", "dpo.pairs_per_prompt=2",
        "dpo.max_new_tokens=8", f"dpo.rewards=[{FAKE}:even_length]", "dpo.logging_steps=1",
        "grpo.max_steps=2", "grpo.batch_size=2", "grpo.num_generations=2", "grpo.max_completion_length=8",
        f"grpo.rewards=[{FAKE}:even_length, {FAKE}:exact_answer]", "grpo.reward_weights=[0.5, 1.0]",
        "grpo.logging_steps=1",
        *(f"{s}.eval.{k}" for s in ("sft", "dpo", "grpo")
          for k in ("n=4", "max_new_tokens=8", "rewards=[world]")),
    ]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_model_dir, task_dir):
    out = tmp_path_factory.mktemp("post")
    cfg = load_config(PosttrainConfig, None, chain_overrides(tiny_model_dir, task_dir, out))
    t0 = time.time()
    final = run(cfg)
    return {"cfg": cfg, "out": out, "final": final, "wall_s": time.time() - t0}


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    return any(not (wa[k] == wb[k]).all() for k in wa)


def test_each_stage_writes_a_loadable_checkpoint(chain, tiny_model_dir):
    import torch

    from remit.models import load_model, load_tokenizer

    out = chain["out"]
    assert chain["final"] == out / "grpo"
    base_tok = load_tokenizer(tiny_model_dir)
    for stage in ("sft", "dpo", "grpo"):
        d = out / stage
        m = read_manifest(d)
        assert m["stage"] == stage and m["config"]["out"] == str(d)
        assert (d / "config.yaml").is_file() and not scratch_dir(d).exists()
        tok = load_tokenizer(d)
        assert tok.get_vocab() == base_tok.get_vocab() and tok.chat_template == base_tok.chat_template
        model = load_model(d, device="cpu")
        ids = torch.tensor([tok("What is 2 + 3?")["input_ids"]])
        logits = model(input_ids=ids).logits
        assert logits.shape == (1, ids.shape[1], model.config.vocab_size) and torch.isfinite(logits).all()
    # the chain's input model for each stage is the previous stage's output
    assert read_manifest(out / "dpo")["inputs"]["model"] == str(out / "sft")
    assert read_manifest(out / "grpo")["inputs"]["model"] == str(out / "dpo")


def test_stages_train_and_record(chain, tiny_model_dir):
    out = chain["out"]
    sft = read_manifest(out / "sft")
    assert sft["steps"] == 2 and sft["examples"] == 32 and sft["first_loss"] > 0
    losses = [json.loads(line).get("loss") for line in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert len([v for v in losses if v is not None]) == 2
    assert _changed(tiny_model_dir, out / "sft")

    dpo = read_manifest(out / "dpo")
    pairs = dpo["pairs"]
    assert dpo["skipped"] is False and dpo["steps"] == 2
    assert pairs["prompts"] == 4 and pairs["samples"] == 16
    assert 1 <= pairs["pairs"] <= 2 * pairs["prompts_with_pairs"]
    assert pairs["prompts_with_pairs"] + pairs["prompts_all_correct"] + pairs["prompts_all_incorrect"] == 4
    assert _changed(out / "sft", out / "dpo")

    grpo = read_manifest(out / "grpo")
    assert grpo["steps"] == 2 and grpo["use_vllm"] is False and grpo["prompts"] == 16
    ev = grpo["eval"]
    assert ev["settings"]["n"] == 4 and 0.0 <= ev["pre"] <= 1.0 and 0.0 <= ev["post"] <= 1.0
    # the pre-GRPO reward is the DPO output's post reward (same settings), not re-measured
    assert ev["pre"] == read_manifest(out / "dpo")["eval"]["post"]
    assert _changed(out / "dpo", out / "grpo")

    chain_m = read_manifest(out)
    assert chain_m["stage"] == "posttrain" and chain_m["final"] == str(out / "grpo")
    assert set(chain_m["stages"]) == {"sft", "dpo", "grpo"} and chain_m["stages"]["dpo"]["pairs"] == pairs["pairs"]


def test_result_is_a_valid_reference_for_midtrain(chain, tiny_model_dir):
    from remit.models import check_compatible

    notes = check_compatible(str(tiny_model_dir), str(chain["final"]))
    assert isinstance(notes, list)
    base = json.loads((tiny_model_dir / "config.json").read_text())
    post = json.loads((chain["final"] / "config.json").read_text())
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "bos_token_id", "eos_token_id", "model_type"):
        assert post[key] == base[key], key


def test_finished_stages_are_not_rerun(chain):
    out, cfg = chain["out"], chain["cfg"]
    before = {s: (read_manifest(out / s)["finished_at"], (out / s / "model.safetensors").stat().st_mtime_ns)
              for s in ("sft", "dpo", "grpo")}
    t0 = time.time()
    assert run(cfg) == out / "grpo"
    assert time.time() - t0 < 10
    after = {s: (read_manifest(out / s)["finished_at"], (out / s / "model.safetensors").stat().st_mtime_ns)
             for s in ("sft", "dpo", "grpo")}
    assert after == before

    # a changed GRPO config re-runs GRPO only
    cfg2 = load_config(PosttrainConfig, None, [*chain_overrides(Path(cfg.model), Path(cfg.data_dir), out),
                                                "grpo.max_steps=1"])
    run(cfg2)
    assert (out / "sft" / "model.safetensors").stat().st_mtime_ns == before["sft"][1]
    assert (out / "dpo" / "model.safetensors").stat().st_mtime_ns == before["dpo"][1]
    m = read_manifest(out / "grpo")
    assert m["steps"] == 1 and m["config"]["max_steps"] == 1
