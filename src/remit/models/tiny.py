"""Model configs for the supported architectures, and tiny random-init models for tests.

    from remit.models import ModelConfig, tiny_model
    model = tiny_model("llama", vocab_size=len(tok), hidden_size=32)          # tests
    model = ModelConfig(arch="qwen3", hidden_size=256, num_layers=4).build(tok)  # pre-train from scratch

Every architecture here is a plain transformers causal LM (``LlamaForCausalLM``, ...), so a
model built from these configs is saved and reloaded with ``save_pretrained`` /
``from_pretrained`` like any hub checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from remit.config import check_choice, check_range
from remit.errors import ConfigError

ARCHS = ("llama", "olmo2", "smollm3", "qwen3")


def _config_class(arch: str):
    import transformers

    return {
        "llama": transformers.LlamaConfig,
        "olmo2": transformers.Olmo2Config,
        "smollm3": transformers.SmolLM3Config,
        "qwen3": transformers.Qwen3Config,
    }[arch]


def tiny_config(arch: str, *, vocab_size: int, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                num_kv_heads: int | None = None, intermediate_size: int | None = None,
                max_position_embeddings: int = 512, tie_word_embeddings: bool = True,
                bos_token_id: int | None = None, eos_token_id: int | None = None, pad_token_id: int | None = None,
                rope_theta: float = 10000.0, **extra: Any):
    """A transformers ``PretrainedConfig`` for ``arch`` with the given (small) sizes.

    ``num_kv_heads`` defaults to ``num_heads`` (no GQA); ``intermediate_size`` to 4x hidden.
    Special-token ids should come from the tokenizer (``ModelConfig.build`` does that).
    """
    check_choice("arch", arch, ARCHS)
    check_range("hidden_size", hidden_size, lo=1)
    check_range("num_heads", num_heads, lo=1)
    if hidden_size % num_heads:
        raise ConfigError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    num_kv_heads = num_kv_heads or num_heads
    if num_heads % num_kv_heads:
        raise ConfigError(f"num_heads={num_heads} must be divisible by num_kv_heads={num_kv_heads}")
    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        head_dim=hidden_size // num_heads,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
    )
    if arch == "olmo2":
        kwargs.pop("head_dim")  # Olmo2 derives it from hidden_size / heads
    if arch == "smollm3":
        kwargs.pop("head_dim")
        # SmolLM3 skips RoPE on every 4th layer; keep that, but a 2-layer model then has RoPE everywhere.
    kwargs.update(extra)
    return _config_class(arch)(**kwargs)


def tiny_model(arch: str, *, vocab_size: int, seed: int = 0, dtype: str | None = "float32", **config_kwargs: Any):
    """A random-init causal LM (seeded, so two calls give identical weights)."""
    return init_model(tiny_config(arch, vocab_size=vocab_size, **config_kwargs), seed=seed, dtype=dtype)


def init_model(hf_config, *, seed: int = 0, dtype: str | None = "float32"):
    """Random-init causal LM from a transformers config; the global RNG state is left untouched."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(hf_config, dtype=getattr(torch, dtype) if dtype else None)
    return model


def param_count(model, *, trainable_only: bool = False, exclude_embeddings: bool = False) -> int:
    """Number of (unique) parameters; tied embeddings counted once."""
    seen: set[int] = set()
    emb_ids = set()
    if exclude_embeddings:
        for m in (model.get_input_embeddings(), model.get_output_embeddings()):
            if m is not None:
                emb_ids.update(id(p) for p in m.parameters())
    total = 0
    for p in model.parameters():
        if id(p) in seen or id(p) in emb_ids or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


@dataclass
class ModelConfig:
    """Architecture and sizes of a model created from scratch (the pre-train stage).

    ``vocab_size`` None => ``len(tokenizer)`` (rounded up to ``pad_vocab_to`` when set; the
    extra rows are padding that ``check_compatible`` accepts).
    """

    arch: str = "llama"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None
    intermediate_size: int | None = None
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True
    rope_theta: float = 10000.0
    vocab_size: int | None = None
    pad_vocab_to: int = 1

    def validate(self) -> None:
        check_choice("model.arch", self.arch, ARCHS)
        for key in ("hidden_size", "num_layers", "num_heads", "max_position_embeddings", "pad_vocab_to"):
            check_range(f"model.{key}", getattr(self, key), lo=1)
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"model.hidden_size={self.hidden_size} must be divisible by "
                              f"model.num_heads={self.num_heads}")
        if self.num_kv_heads is not None and (self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads):
            raise ConfigError(f"model.num_kv_heads={self.num_kv_heads} must divide model.num_heads={self.num_heads}")

    def resolved_vocab_size(self, tokenizer=None) -> int:
        n = len(tokenizer) if tokenizer is not None else None
        if self.vocab_size is not None:
            if n is not None and self.vocab_size < n:
                raise ConfigError(f"model.vocab_size={self.vocab_size} is smaller than the tokenizer ({n} tokens)")
            return self.vocab_size
        if n is None:
            raise ConfigError("model.vocab_size is unset and no tokenizer was given")
        return -(-n // self.pad_vocab_to) * self.pad_vocab_to

    def hf_config(self, tokenizer=None):
        ids = {}
        if tokenizer is not None:
            ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
        kw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
              if f.name not in ("arch", "vocab_size", "pad_vocab_to")}
        return tiny_config(self.arch, vocab_size=self.resolved_vocab_size(tokenizer), **kw, **ids)

    def build(self, tokenizer=None, *, seed: int = 0, dtype: str | None = "float32"):
        """A fresh random-init model (seeded)."""
        self.validate()
        return init_model(self.hf_config(tokenizer), seed=seed, dtype=dtype)
