"""The real-scale recipes (configs/recipes/) load, validate, and run their code path on CPU
with a tiny random model of the same architecture for a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from remit.config import load_config
from remit.midtrain.config import MidtrainConfig

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"
ARCH = {"olmo2-1b-remit.yaml": "olmo2", "smollm3-3b-remit.yaml": "smollm3"}


DATA = {"olmo2-1b-data.yaml": "olmo2-1b-remit.yaml"}  # prepare-data configs and the recipe they prepare
POST = ("olmo2-1b-posttrain.yaml",)  # post-training chains


def test_every_recipe_is_covered():
    assert sorted(p.name for p in RECIPES.glob("*.yaml")) == sorted([*ARCH, *DATA, *POST])


@pytest.mark.parametrize("recipe", POST)
def test_posttrain_recipe_uses_real_model_learning_rates(recipe):
    from remit.posttrain.chain import PosttrainConfig

    cfg = load_config(PosttrainConfig, RECIPES / recipe)
    assert cfg.stages == ["sft", "dpo", "grpo"]
    # facebookresearch/midtraining-distillation post_training/scripts (see the recipe's comments)
    assert (cfg.sft.learning_rate, cfg.dpo.learning_rate, cfg.grpo.learning_rate) == (5e-6, 2.5e-6, 5e-7)
    assert cfg.sft.batch_size * cfg.sft.grad_accum * 8 == 128 == cfg.dpo.batch_size * cfg.dpo.grad_accum * 8
    assert cfg.sft.max_length == 4096 and cfg.sft.trl["lr_scheduler_type"] == "linear"


@pytest.mark.parametrize("data_recipe", sorted(DATA))
def test_data_recipe_prepares_its_training_recipe(data_recipe):
    # Equal data configs give equal fingerprints: the training recipe then finds the prepared cache.
    from remit.midtrain.prepare import PrepareConfig

    prep = load_config(PrepareConfig, RECIPES / data_recipe)
    train = load_config(MidtrainConfig, RECIPES / DATA[data_recipe])
    assert prep.data == train.data and len(prep.data.sources) == 6 and prep.tokenizer


@pytest.mark.parametrize("recipe", sorted(ARCH))
def test_recipe_code_path_on_tiny_model(recipe, tmp_path, tiny_tokenizer, tiny_jsonl):
    from remit.midtrain.stage import run
    from remit.models import ModelConfig, load_model

    full = load_config(MidtrainConfig, RECIPES / recipe)
    assert full.parallel == "fsdp" and full.method.name == "remit" and full.token_budget >= 10**9
    assert all(s.path for s in full.data.sources)

    model_dir = tmp_path / "tiny"
    model = ModelConfig(arch=ARCH[recipe], hidden_size=32, num_layers=2, num_heads=4).build(tiny_tokenizer, seed=0)
    model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    ref = ModelConfig(arch=ARCH[recipe], hidden_size=32, num_layers=2, num_heads=4).build(tiny_tokenizer, seed=1)
    ref_dir = tmp_path / "ref"
    ref.save_pretrained(ref_dir)
    tiny_tokenizer.save_pretrained(ref_dir)

    cfg = load_config(MidtrainConfig, RECIPES / recipe, [
        f"out_dir={tmp_path / 'out'}", f"model.path={model_dir}", f"reference.path={ref_dir}",
        f"data.sources=[{{path: {tiny_jsonl}}}]", "data.seq_len=32", "data.max_tokens=null", "optim.batch_size=4",
        "optim.micro_batch_size=2", "max_steps=3", "checkpoint_every=2", "logging.every=1",
        "logging.progress=false", "logging.tensorboard=false", f"data.cache_dir={tmp_path / 'cache'}",
    ])
    out = run(cfg)
    trained = load_model(out, dtype="float32", device="cpu")
    assert trained.config.model_type == ARCH[recipe]
    import json

    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert all(0.8 - 1e-6 <= r["w_mean"] <= 1.2 + 1e-6 for r in lines)
