"""Bad inputs end in one line naming the key or the file (never a traceback, never silently accepted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from remit.errors import ConfigError, DataError, IncompatibleModelsError


@pytest.mark.parametrize("value", ["nan", ".nan", "NaN", "inf", "-inf"])
def test_non_finite_learning_rate_is_refused(make_cfg, value):
    with pytest.raises(ConfigError) as e:
        make_cfg("ntp", f"optim.lr={value}")
    assert str(e.value).startswith("optim.lr=") and ("not a number" in str(e.value) or "finite" in str(e.value))


def test_nan_in_an_unchecked_float_field_is_refused(make_cfg):
    with pytest.raises(ConfigError, match=r"^optim\.grad_clip='nan' is not a number"):
        make_cfg("ntp", "optim.grad_clip=nan")


def test_out_dir_that_is_a_file_is_one_line_on_the_command_line(make_cfg, tmp_path, capsys):
    from remit.cli import main

    cfg = make_cfg("ntp")
    f = tmp_path / "taken"
    f.write_text("x")
    args = [f"model.path={cfg.model.path}", f"data.sources=[{{path: '{cfg.data.sources[0].path}'}}]",
            "data.seq_len=32", "logging.progress=false"]
    assert main(["midtrain", f"out_dir={f}", *args]) == 2
    assert capsys.readouterr().err.strip() == (f"remit midtrain: error: out_dir={f} is an existing file, not a "
                                               f"folder: remove it or choose another out_dir")
    assert main(["midtrain", f"out_dir={f}/run", *args]) == 2
    assert capsys.readouterr().err.strip() == (f"remit midtrain: error: out_dir={f}/run cannot be created: {f} is "
                                               f"a file, not a folder")


@pytest.fixture(scope="module")
def other_vocab(tmp_path_factory, tiny_tokenizer):
    """Tiny Llamas with 300 and 600 output rows (the policy's tokenizer has 512 tokens)."""
    from remit.models import tiny_model

    out = {}
    for rows in (300, 600):
        d = tmp_path_factory.mktemp(f"vocab{rows}")
        tiny_model("llama", vocab_size=rows, hidden_size=32, num_heads=4, seed=2).save_pretrained(d)
        tiny_tokenizer.save_pretrained(d)
        out[rows] = d
    return out


def test_unchecked_reference_with_a_smaller_vocabulary_is_refused(make_cfg, other_vocab):
    from remit.midtrain.stage import run

    small = other_vocab[300]
    with pytest.raises(IncompatibleModelsError) as e:
        run(make_cfg("remit", f"reference.path={small}", "reference.check=false"))
    assert str(e.value).startswith(f"reference.path={small} has 300 output rows but the tokenizer has 512 tokens")
    with pytest.raises(IncompatibleModelsError, match="vocab"):  # the check itself says so too
        run(make_cfg("remit", f"reference.path={small}", out="checked"))


def test_unchecked_reference_with_a_larger_vocabulary_scores_the_tokenizer_rows(make_cfg, other_vocab):
    from remit.midtrain.stage import run

    out = run(make_cfg("remit", f"reference.path={other_vocab[600]}", "reference.check=false"))
    rows = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in rows)


@pytest.fixture(scope="module")
def short_window_model(tmp_path_factory, tiny_tokenizer):
    from remit.models import ModelConfig

    d = tmp_path_factory.mktemp("window16")
    ModelConfig(arch="llama", hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=16).build(
        tiny_tokenizer, seed=0).save_pretrained(d)
    tiny_tokenizer.save_pretrained(d)
    return d


def test_seq_len_past_the_model_window_needs_the_explicit_option(make_cfg, short_window_model):
    from remit.midtrain.stage import run

    with pytest.raises(ConfigError) as e:
        run(make_cfg("ntp", f"model.path={short_window_model}"))
    assert str(e.value).startswith(f"data.seq_len=32 is longer than the max_position_embeddings=16 of "
                                   f"model.path={short_window_model}: lower data.seq_len to <= 16, or set "
                                   f"model.extrapolate_positions=true")
    out = run(make_cfg("ntp", f"model.path={short_window_model}", "model.extrapolate_positions=true"))
    assert (Path(out) / "manifest.json").is_file()


def test_fresh_model_window_is_checked_with_the_config(tmp_path, tiny_jsonl):
    from remit.config import load_config
    from remit.midtrain.config import PretrainConfig

    args = [f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=1024", f"out_dir={tmp_path}/p"]
    with pytest.raises(ConfigError, match=r"^data\.seq_len=1024 is longer than the max_position_embeddings=512 "
                                          r"of model\.fresh"):
        load_config(PretrainConfig, None, args)
    assert load_config(PretrainConfig, None, args + ["model.extrapolate_positions=true"]).data.seq_len == 1024


def test_reference_cache_shard_cut_short_is_named_and_rescored(make_cfg, tmp_path, ref_model_dir, tiny_jsonl):
    from remit.config import load_config
    from remit.midtrain import score
    from remit.midtrain.stage import run

    scfg = load_config(score.ScoreConfig, None, [
        f"reference={ref_model_dir}", f"data.sources=[{{path: '{tiny_jsonl}'}}]", "data.seq_len=32",
        f"data.cache_dir={tmp_path / 'cache'}", f"out_dir={tmp_path / 'refcache'}", "shard_rows=16"])
    cache = score.run(scfg)
    shard = cache / "shards" / "shard-00001.npy"
    good = np.load(shard)
    shard.write_bytes(shard.read_bytes()[:-100])  # meta.json still says complete
    with pytest.raises(DataError) as e:
        run(make_cfg("remit", f"reference.cache={cache}"))
    msg = str(e.value)
    assert msg.startswith(f"{shard}: cut short: {shard.stat().st_size} bytes, {shard.stat().st_size + 100} expected")
    assert "re-run `remit score-reference`" in msg and "\n" not in msg
    score.run(scfg)  # the finished cache is re-checked: the damaged shard is scored again
    assert np.array_equal(np.load(shard), good)
    shard.unlink()
    with pytest.raises(DataError, match=r"shard-00001\.npy: the shard is missing"):
        run(make_cfg("remit", f"reference.cache={cache}", out="again"))


def test_flash_attention_with_document_masking_is_refused_before_training(make_cfg, monkeypatch):
    from remit.midtrain import setup
    from remit.midtrain.stage import run

    real = setup.load_model

    def flash(*a, **kw):  # what a checkpoint whose config asks for flash_attention_2 loads as
        model = real(*a, **kw)
        model.config._attn_implementation_internal = "flash_attention_2"
        return model

    monkeypatch.setattr(setup, "load_model", flash)
    with pytest.raises(ConfigError, match=r"^model.path=.*: data.cross_document_attention=false needs "
                                          r"attn_implementation"):
        run(make_cfg("remit", "data.cross_document_attention=false"))
