"""snapshot_tokens: weights-only HF snapshots at fixed token counts hold exactly the weights of their step."""

from __future__ import annotations

import torch

SEQ = 32  # the window of conftest.make_cfg


def test_snapshots_hold_the_weights_of_their_step(make_cfg):
    from safetensors.torch import load_file

    from remit.midtrain.checkpoint import load_hf_state, snapshot_dir
    from remit.midtrain.engine import train

    per = 4 * SEQ  # optim.batch_size x seq_len
    cfg = make_cfg("ntp", "checkpoint_every=1", "keep_checkpoints=10", f"snapshot_tokens=[{per + 1}, {3 * per}, {9 * per}]")
    assert cfg.snapshot_steps() == {2: 2 * per, 3: 3 * per}  # the first step reaching each count; past the end: none
    out = train(cfg)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == [f"tokens-{2 * per:012d}", f"tokens-{3 * per:012d}"]
    for step in (2, 3):
        snap = snapshot_dir(out, step * per)
        assert (snap / "tokenizer.json").is_file() and not (snap / "optimizer.pt").exists()
        w, ref = load_file(str(snap / "model.safetensors")), load_hf_state(out / "checkpoints" / f"step-{step:08d}")
        assert w and all(torch.equal(w[k], ref[k]) for k in w)
    final = load_file(str(out / "model.safetensors"))
    assert not all(torch.equal(final[k], w[k]) for k in w)  # the last snapshot is not the end


def test_snapshots_do_not_change_training(make_cfg):
    from safetensors.torch import load_file

    from remit.midtrain.engine import train

    a = train(make_cfg("ntp", out="plain"))
    b = train(make_cfg("ntp", "snapshot_tokens=[128, 256]", out="snap"))
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
