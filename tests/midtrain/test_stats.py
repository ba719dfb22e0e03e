"""The logged ReMiT weight statistics of a real run equal a closed form computed from the same batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


def test_logged_weight_stats_match_closed_form(make_cfg, tmp_path, tiny_model_dir, ref_model_dir):
    from remit.midtrain.distributed import World
    from remit.midtrain.reference import PolicyLogps
    from remit.midtrain.setup import build_run
    from remit.midtrain.stage import run
    from remit.models import load_model
    from remit.objectives import remit_weights

    eps, bins = 0.1, 5
    overrides = ("max_steps=1", f"method.epsilon={eps}", f"logging.hist_bins={bins}")  # 2 micro-batches of 2 rows
    out = run(make_cfg("remit", *overrides))
    logged = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])

    # The same first step, rebuilt: same data order (seeded iterator), the starting model, the reference.
    again = build_run(make_cfg("remit", *overrides, out="again"), World(), tmp_path / "again")
    micro = [next(again.iterator) for _ in range(again.accum)]
    assert again.accum == 2
    policy = PolicyLogps(load_model(tiny_model_dir, dtype="float32")).eval()
    ref = PolicyLogps(load_model(ref_model_dir, dtype="float32")).eval()
    w_all, d_all = [], []
    with torch.no_grad():
        for mb in micro:
            mask = mb["labels"] != -100
            lp, _ = policy(mb["input_ids"], mb["labels"])
            lr, _ = ref(mb["input_ids"], mb["labels"])
            w_all.append(remit_weights(lr, lp, mask, epsilon=eps)[mask].double().numpy())
            d_all.append((lr - lp)[mask].double().numpy())
    w, d = np.concatenate(w_all), np.concatenate(d_all)
    lo, hi = 1 - eps, 1 + eps
    tol = 4 * np.finfo(np.float32).eps
    assert logged["w_mean"] == pytest.approx(w.mean(), abs=1e-6)
    assert logged["w_std"] == pytest.approx(w.std(), abs=1e-6)
    assert logged["w_frac_hi"] == pytest.approx((w >= hi - tol).mean(), abs=1e-12)
    assert logged["w_frac_lo"] == pytest.approx((w <= lo + tol).mean(), abs=1e-12)
    assert logged["w_hist"] == np.histogram(np.clip(w, lo, hi), bins=bins, range=(lo, hi))[0].tolist()
    assert logged["w_hist_range"] == pytest.approx([lo, hi])
    assert logged["delta_mean"] == pytest.approx(d.mean(), abs=1e-5)
    assert logged["delta_std"] == pytest.approx(d.std(), abs=1e-5)
    assert 0 < logged["w_frac_hi"] < 1 and sum(logged["w_hist"]) == w.size == 4 * 32  # the whole step, both halves
