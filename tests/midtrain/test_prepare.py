"""Data for the training stages: prepare-data once and reuse it; a dolma token file trains like its text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def _losses(out: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_prepare_data_is_reused_by_midtrain(make_cfg, tmp_path, tiny_model_dir, tiny_jsonl):
    from remit.config import load_config
    from remit.data import tokens as tokens_mod
    from remit.midtrain.prepare import PrepareConfig, run
    from remit.midtrain.stage import run as midtrain

    cache = tmp_path / "prepared"
    packed = run(load_config(PrepareConfig, None, [
        f"tokenizer={tiny_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=32",
        f"out_dir={cache}"]))
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["stage"] == "prepare-data" and manifest["packed"] == str(packed) and manifest["rows"] > 8
    before = dict(tokens_mod.STATS)
    out = midtrain(make_cfg("ntp", f"data.cache_dir={cache}", "max_steps=2"))
    assert tokens_mod.STATS["tokenized_sources"] == before["tokenized_sources"]  # nothing tokenised again
    assert tokens_mod.STATS["cache_hits"] == before["cache_hits"] + 1
    assert [p.name for p in cache.glob("packed-*")] == [packed.name]
    assert json.loads((out / "manifest.json").read_text())["data_fingerprint"] == packed.name[len("packed-"):]


def test_dolma_token_file_trains_like_its_text(make_cfg, tmp_path, tiny_jsonl, tiny_tokenizer):
    from remit.data import DataSource, tokenize_source
    from remit.midtrain.stage import run

    tok = tokenize_source(DataSource(str(tiny_jsonl)), tiny_tokenizer, cache_dir=None)
    path = tmp_path / "part-0-00000.npy"
    np.asarray(tok.tokens).astype(np.uint16).tofile(path)  # dolma's layout: raw ids, eos after each document
    text = run(make_cfg("ntp", out="text"))
    ids = run(make_cfg("ntp", f"data.sources=[{{path: '{path}', kind: tokens, dtype: uint16}}]", out="ids"))
    assert _losses(ids) == pytest.approx(_losses(text), abs=1e-6) and len(_losses(ids)) == 4
