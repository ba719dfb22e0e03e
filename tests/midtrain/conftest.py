"""Fixtures for the engine tests: a tiny mid-training config factory (hidden 32, seq 32)."""

from __future__ import annotations

from pathlib import Path

import pytest

SEQ = 32


@pytest.fixture(scope="session")
def ref_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A second tiny Llama (seed 1): the frozen reference."""
    from remit.models import ModelConfig

    out = tmp_path_factory.mktemp("tiny_ref")
    model = ModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=4).build(tiny_tokenizer, seed=1)
    model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def make_cfg(tmp_path, tiny_model_dir, ref_model_dir, tiny_jsonl):
    """make_cfg(method="remit", **overrides) -> MidtrainConfig writing under tmp_path."""
    from remit.config import load_config
    from remit.midtrain.config import MidtrainConfig

    def make(method: str = "ntp", *overrides: str, out: str = "run") -> MidtrainConfig:
        base = [
            f"out_dir={tmp_path / out}", f"model.path={tiny_model_dir}",
            f"data.sources=[{{path: '{tiny_jsonl}'}}]", f"data.seq_len={SEQ}",
            f"data.cache_dir={tmp_path / 'cache'}", "optim.batch_size=4", "optim.micro_batch_size=2",
            "optim.lr=3e-3", "max_steps=4", "logging.every=1", "logging.progress=false",
            "logging.tensorboard=false", "checkpoint_every=0", f"method.name={method}",
        ]
        if method != "ntp":
            base.append(f"reference.path={ref_model_dir}")
        return load_config(MidtrainConfig, None, base + list(overrides))

    return make
