"""load_model / load_tokenizer: round trip of a saved tiny model, clear errors on bad paths."""

from __future__ import annotations

import json

import pytest
import torch

from remit.errors import RemitError
from remit.models import load_model, load_tokenizer


def test_load_round_trip(tiny_model_dir, tiny_tokenizer):
    model = load_model(tiny_model_dir)
    assert model.dtype == torch.float32 and not model.training
    assert model.config.vocab_size == len(tiny_tokenizer) == 512
    assert model.config.hidden_size == 32
    again = load_model(tiny_model_dir, dtype="bf16")
    assert again.dtype == torch.bfloat16
    torch.testing.assert_close(again.get_input_embeddings().weight.float(), model.get_input_embeddings().weight,
                               atol=1e-2, rtol=1e-2)
    tok = load_tokenizer(tiny_model_dir)
    assert tok.get_vocab() == tiny_tokenizer.get_vocab()


def test_load_errors(tmp_path, tiny_model_dir):
    with pytest.raises(RemitError, match=f"{tmp_path / 'nope'} does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RemitError, match="has no config.json"):
        load_model(tmp_path / "empty")
    with pytest.raises(RemitError, match="has no tokenizer files"):
        load_tokenizer(tmp_path / "empty")
    bad = tmp_path / "t5"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(RemitError, match="'t5' is not a causal language model"):
        load_model(bad)
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(RemitError, match="cannot load the weights of model directory"):
        load_model(noweights)
    with pytest.raises(RemitError, match="unknown dtype"):
        load_model(tiny_model_dir, dtype="float7")


def test_split_revision(tmp_path):
    from remit.models.load import split_revision

    assert split_revision("allenai/OLMo-2-0425-1B@stage1-step1000-tokens2B") == (
        "allenai/OLMo-2-0425-1B", "stage1-step1000-tokens2B")
    assert split_revision("gpt2") == ("gpt2", None)
    odd = tmp_path / "run@3"
    odd.mkdir()
    assert split_revision(str(odd)) == (str(odd), None)  # an existing path is never split


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_safetensors_is_one_line_naming_the_file(tmp_path, tiny_model_dir, damage):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    f = bad / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a model " * 50, "empty": b""}[damage])
    with pytest.raises(RemitError) as e:
        load_model(bad)
    msg = str(e.value)
    assert msg.startswith(f"cannot load the weights of model directory {bad}: model.safetensors is truncated or "
                          f"not a safetensors file")
    assert "\n" not in msg
