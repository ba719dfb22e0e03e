"""remit.midtrain.checkpoint: an intermediate checkpoint loads into the HF model with load_hf_state."""

from __future__ import annotations

import torch

from remit.midtrain.checkpoint import latest, load_hf_state, save_checkpoint
from remit.models.tiny import tiny_model

SIZE = {"vocab_size": 64, "hidden_size": 16, "num_layers": 1, "num_heads": 2}


def test_load_hf_state_strips_the_wrapper_prefix(tmp_path):
    saved = tiny_model("llama", seed=0, **SIZE)
    wrapped = {f"model.{k}": v for k, v in saved.state_dict().items()}  # the engine saves PolicyLogps' state
    save_checkpoint(tmp_path, 3, wrapped, {}, {"tokens": 0}, keep=1)
    other = tiny_model("llama", seed=1, **SIZE)
    other.load_state_dict(load_hf_state(latest(tmp_path)))  # strict: every key must match
    for k, v in saved.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k
