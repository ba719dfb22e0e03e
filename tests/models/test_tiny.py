"""Tiny models of each architecture build, run forward and train-step; ModelConfig and param_count."""

from __future__ import annotations

import pytest
import torch

from remit.errors import ConfigError
from remit.models import ARCHS, ModelConfig, param_count, tiny_config, tiny_model


@pytest.mark.parametrize("arch", ARCHS)
def test_each_arch_forward(arch):
    model = tiny_model(arch, vocab_size=300, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                       pad_token_id=0, bos_token_id=1, eos_token_id=2)
    assert model.config.model_type == arch
    assert model.config.num_key_value_heads == 2 and model.config.num_hidden_layers == 2
    ids = torch.randint(0, 300, (2, 9), generator=torch.Generator().manual_seed(0))
    out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (2, 9, 300)
    assert torch.isfinite(out.loss)
    # random init: the loss is close to uniform log(V)
    assert abs(out.loss.item() - torch.log(torch.tensor(300.0)).item()) < 0.5
    # causal: changing the last token leaves earlier logits unchanged
    ids2 = ids.clone()
    ids2[:, -1] = (ids2[:, -1] + 1) % 300
    torch.testing.assert_close(model(input_ids=ids2).logits[:, :-1], out.logits[:, :-1])
    # same seed, same weights; another seed, other weights
    again = tiny_model(arch, vocab_size=300, hidden_size=32, num_kv_heads=2, pad_token_id=0)
    other = tiny_model(arch, vocab_size=300, hidden_size=32, num_kv_heads=2, pad_token_id=0, seed=1)
    w = model.get_input_embeddings().weight
    assert torch.equal(again.get_input_embeddings().weight, w)
    assert not torch.equal(other.get_input_embeddings().weight, w)


def test_tiny_model_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_model("llama", vocab_size=64, hidden_size=16, num_heads=2)
    assert torch.equal(torch.rand(3), expected)


def test_param_count_closed_form():
    v, h, layers, inter = 100, 16, 2, 64
    model = tiny_model("llama", vocab_size=v, hidden_size=h, num_layers=layers, num_heads=2, intermediate_size=inter)
    per_layer = 4 * h * h + 3 * h * inter + 2 * h  # q,k,v,o + gate,up,down + 2 RMSNorms (no GQA)
    expected = v * h + layers * per_layer + h  # tied embeddings + final norm
    assert param_count(model) == expected == model.num_parameters()
    assert param_count(model, exclude_embeddings=True) == expected - v * h
    untied = tiny_model("llama", vocab_size=v, hidden_size=h, num_layers=layers, num_heads=2,
                        intermediate_size=inter, tie_word_embeddings=False)
    assert param_count(untied) == expected + v * h


def test_model_config_from_tokenizer(tiny_tokenizer):
    cfg = ModelConfig(arch="qwen3", hidden_size=32, num_layers=1, num_heads=4, num_kv_heads=2, pad_vocab_to=64)
    model = cfg.build(tiny_tokenizer, seed=0)
    assert model.config.vocab_size == 512  # len(tok) = 512 is already a multiple of 64
    assert model.config.eos_token_id == tiny_tokenizer.eos_token_id
    assert model.config.pad_token_id == tiny_tokenizer.pad_token_id
    assert ModelConfig(pad_vocab_to=100).resolved_vocab_size(tiny_tokenizer) == 600
    with pytest.raises(ConfigError, match="smaller than the tokenizer"):
        ModelConfig(vocab_size=10).resolved_vocab_size(tiny_tokenizer)


@pytest.mark.parametrize("kwargs, key", [
    (dict(arch="gpt9"), "model.arch"),
    (dict(hidden_size=30, num_heads=4), "model.hidden_size"),
    (dict(num_kv_heads=3), "model.num_kv_heads"),
    (dict(num_layers=0), "model.num_layers"),
])
def test_model_config_validate(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        ModelConfig(**kwargs).validate()
    if "arch" in kwargs:
        with pytest.raises(ConfigError, match="arch"):
            tiny_config(kwargs["arch"], vocab_size=10)
