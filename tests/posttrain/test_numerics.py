"""Post-training keeps fp32 master weights on every device (TRL's bf16=True autocasts the forward on GPUs).

The CUDA decision is checked without a GPU: ``load_policy`` runs for device "cuda" with model loading
recorded (and kept on the CPU), then one AdamW step at lr 1e-6 must change the weights it loaded.
"""

from __future__ import annotations

import pytest
import torch


def _load_as_on(device: str, path, monkeypatch):
    from remit.models import load_model
    from remit.posttrain import common

    seen = []

    def record(p, *, dtype=None, device=None):
        seen.append((dtype, device))
        return load_model(p, dtype=dtype, device="cpu")

    monkeypatch.setattr(common, "load_model", record)
    model, tok = common.load_policy(str(path), device, "sft")
    return model, tok, seen


def _changed_after_one_step(model, lr: float) -> float:
    """Fraction of parameter entries that one AdamW step at ``lr`` changes."""
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    model.train()
    model(ids, labels=ids).loss.backward()
    opt.step()
    changed = sum(int((p.detach() != b).sum()) for p, b in zip(model.parameters(), before))
    return changed / sum(b.numel() for b in before)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_policy_is_loaded_in_fp32_and_a_1e6_step_moves_it(tiny_model_dir, monkeypatch, device):
    model, _, seen = _load_as_on(device, tiny_model_dir, monkeypatch)
    assert seen == [("float32", device)]
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert _changed_after_one_step(model, 1e-6) > 0.99


def test_bf16_weights_would_not_move(tiny_model_dir):
    """The failure mode the fp32 master weights remove: in-place bf16 updates round away at lr 1e-6."""
    from remit.models import load_model

    frac = _changed_after_one_step(load_model(tiny_model_dir, dtype="bfloat16", device="cpu"), 1e-6)
    assert frac < 0.2


def test_device_args_autocast_on_gpu_only():
    from remit.posttrain.common import device_args

    assert device_args("cuda")["bf16"] is True and device_args("cpu")["bf16"] is False
