"""``remit midtrain --config <recipe> --smoke`` for every training recipe in configs/recipes/: tiny models of the
recipe's architecture, local fixtures with its sources' schema, 3 steps through its code paths (caps, chat
rendering, document masking, method, reference, checkpoint, resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"
ALL = sorted(p.name for p in RECIPES.glob("*.yaml"))
TRAINING = [n for n in ALL if "method" in (yaml.safe_load((RECIPES / n).read_text()) or {})]


def test_the_training_recipes_are_found():
    # the others (prepare-data, post-training) are checked in tests/flywheel/test_recipes.py
    assert TRAINING == ["olmo2-1b-remit.yaml", "smollm3-3b-remit.yaml"]


@pytest.mark.parametrize("recipe", TRAINING)
def test_recipe_smoke_runs_every_code_path(recipe, tmp_path):
    from remit.cli import main
    from remit.config import load_config
    from remit.midtrain.config import MidtrainConfig

    full = load_config(MidtrainConfig, RECIPES / recipe)
    assert main(["midtrain", "--config", str(RECIPES / recipe), "--smoke", f"out_dir={tmp_path / 'run'}"]) in (0, None)
    work = tmp_path / "run-smoke"
    out = work / "out"
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]  # 2 steps, a checkpoint, resumed to 3
    assert (out / "checkpoints" / "step-00000002").is_dir()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resumed_from_step"] == 2  # the second run loaded step 2's checkpoint and trained step 3 only
    cfg = manifest["config"]
    assert cfg["data"]["cross_document_attention"] == full.data.cross_document_attention
    assert cfg["method"]["name"] == full.method.name and cfg["parallel"] == full.parallel
    model = json.loads((out / "config.json").read_text())
    assert model["model_type"] == {"olmo2-1b-remit.yaml": "olmo2", "smollm3-3b-remit.yaml": "smollm3"}[recipe]
    packed = json.loads(next((work / "cache").glob("packed-*/packed.json")).read_text())
    assert packed["num_tokens"] == 3 * 4 * 32 + 1  # data.max_tokens scaled to what 3 steps use
    for src, got in zip(full.data.sources, packed["sources"]):
        assert got["max_tokens"] is not None and got["tokens"] < got["max_tokens"] + 30  # read up to its cap
        fixture = json.loads(Path(got["path"]).read_text().splitlines()[0])
        assert set(src.fields()) <= set(fixture)  # the real source's schema
        if src.kind == "chat":  # rendered with the chat template: its role tokens are in the packed stream
            assert [m["role"] for m in fixture[src.messages_field]] == ["user", "assistant"]
            from remit.data import DataSource, tokenize_source
            from remit.models import load_tokenizer

            tok = load_tokenizer(work / "tokenizer")
            ids = tokenize_source(DataSource(**{**src.__dict__, "path": got["path"], "subset": None,
                                                "max_tokens": got["max_tokens"]}), tok,
                                  cache_dir=work / "cache" / "tokens").doc(0).tolist()
            assert tok.convert_tokens_to_ids("<|assistant|>") in ids


def test_smoke_cached_reference_path(tmp_path):
    from remit.cli import main

    recipe = RECIPES / "olmo2-1b-remit.yaml"
    assert main(["midtrain", "--config", str(recipe), "--smoke", f"out_dir={tmp_path / 'run'}",
                 "reference.cache=use-a-cache"]) in (0, None)
    cfg = json.loads((tmp_path / "run-smoke" / "out" / "manifest.json").read_text())
    assert cfg["inputs"]["reference_cache"].endswith("ref_cache")


def test_smoke_with_an_assistant_only_chat_source(tmp_path):
    """A chat source with loss=assistant trains through the whole engine (labels -100 outside assistant turns)."""
    from remit.cli import main

    assert main(["midtrain", "--config", str(RECIPES / "smollm3-3b-remit.yaml"), "--smoke",
                 f"out_dir={tmp_path / 'run'}",
                 "data.sources=[{path: HuggingFaceTB/smoltalk2, subset: Mid, kind: chat, loss: assistant}]"]) in (0, None)
    lines = [json.loads(x) for x in (tmp_path / "run-smoke" / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
