"""Bad input fails with one clear RemitError before any training step (no model load when the data is bad)."""

from __future__ import annotations

import shutil

import pytest
from posttrain_helpers import write_jsonl

from remit.cli import main
from remit.config import load_config
from remit.errors import ConfigError, DataError, RemitError
from remit.posttrain import dpo, grpo, sft
from remit.posttrain.chain import PosttrainConfig, stage_configs

pytestmark = pytest.mark.xdist_group("posttrain_trl")


def test_bad_data_is_reported_before_the_model_is_loaded(tmp_path):
    bad = tmp_path / "sft.jsonl"
    bad.write_text('{"prompt": "What is 1 + 1?"}\n', encoding="utf-8")
    cfg = sft.SFTStageConfig(model=str(tmp_path / "no-such-model"), data=str(bad), out=str(tmp_path / "o"))
    with pytest.raises(DataError, match=r"sft.jsonl:1: missing field 'response'"):
        sft.run(cfg)
    rl = write_jsonl(tmp_path / "rl.jsonl", [{"prompt": "What is 1 + 1?", "answer": "2", "kind": "arith"},
                                             {"prompt": "What is 2 + 2?", "kind": "arith"}])
    with pytest.raises(DataError, match=r"rl.jsonl:2: missing field 'answer'"):
        grpo.run(grpo.GRPOStageConfig(model=str(tmp_path / "m"), data=str(rl), out=str(tmp_path / "g")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty.jsonl: no rows"):
        dpo.run(dpo.DPOStageConfig(model=str(tmp_path / "m"), data=str(empty), out=str(tmp_path / "d")))
    assert not (tmp_path / "o").exists() and not (tmp_path / "g").exists()


def test_reward_columns_and_eval_file_checked_up_front(tmp_path, task_dir):
    no_kind = write_jsonl(tmp_path / "rl.jsonl", [{"prompt": "What is 1 + 1?", "answer": "2"}])
    cfg = grpo.GRPOStageConfig(model=str(tmp_path / "m"), data=str(no_kind), out=str(tmp_path / "g"),
                               rewards=["world"])
    with pytest.raises(DataError, match=r"rl.jsonl: world_reward needs a dataset column 'kind'"):
        grpo.run(cfg)
    bad_eval = tmp_path / "eval.jsonl"
    bad_eval.write_text('{"prompt": "x", "answer": "1", "kind": "arith"}\nnot json\n', encoding="utf-8")
    cfg = grpo.GRPOStageConfig(model=str(tmp_path / "m"), data=str(task_dir / "rl.jsonl"), out=str(tmp_path / "g"))
    cfg.eval.data = str(bad_eval)
    with pytest.raises(DataError, match=r"eval.jsonl:2: not valid JSON"):
        grpo.run(cfg)


def test_tokenizer_without_chat_template(tmp_path, tiny_model_dir, task_dir):
    from remit.models import load_tokenizer

    model_dir = tmp_path / "nochat"
    shutil.copytree(tiny_model_dir, model_dir)
    for f in model_dir.glob("chat_template.jinja"):
        f.unlink()
    tok = load_tokenizer(model_dir)
    tok.chat_template = None
    tok.save_pretrained(model_dir)
    assert load_tokenizer(model_dir).chat_template is None
    cfg = sft.SFTStageConfig(model=str(model_dir), data=str(task_dir / "sft.jsonl"), out=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match=r"tokenizer of model '.*nochat' has no chat template"):
        sft.run(cfg)
    assert not (tmp_path / "o").exists()


def test_unknown_trl_key_names_the_key(tmp_path, tiny_model_dir, task_dir):
    cfg = sft.SFTStageConfig(model=str(tiny_model_dir), data=str(task_dir / "sft.jsonl"), out=str(tmp_path / "o"),
                             device="cpu", trl={"warmup_stepss": 0.1})
    with pytest.raises(ConfigError, match=r"trl.warmup_stepss is not a field of TRL's SFTConfig. "
                                          r"Did you mean 'trl.warmup_steps'"):
        sft.run(cfg)
    assert not (tmp_path / "o").exists()


def test_config_validation_and_paths(tmp_path, task_dir):
    with pytest.raises(ConfigError, match="grpo.num_generations=1 is out of range|num_generations=1 is out of range"):
        load_config(PosttrainConfig, None, ["grpo.num_generations=1"])
    with pytest.raises(ConfigError, match="stages"):
        load_config(PosttrainConfig, None, ["stages=[sft, ppo]"])
    with pytest.raises(ConfigError, match="on_no_pairs"):
        load_config(dpo.DPOStageConfig, None, ["on_no_pairs=maybe"])
    with pytest.raises(ConfigError, match="`model` is not set"):
        stage_configs(PosttrainConfig(out=str(tmp_path)))
    cfg = PosttrainConfig(model="base", out=str(tmp_path / "p"), data_dir=str(task_dir), stages=["sft", "grpo"])
    plan = dict(stage_configs(cfg))
    assert plan["sft"].data == str(task_dir / "sft.jsonl") and plan["grpo"].data == str(task_dir / "rl.jsonl")
    assert plan["grpo"].model == str(tmp_path / "p" / "sft") and plan["grpo"].eval.data == str(task_dir / "eval.jsonl")


def test_default_yaml_loads_and_matches_dataclass_defaults():
    from pathlib import Path

    from remit.config import to_dict

    path = Path(__file__).resolve().parents[2] / "configs" / "posttrain" / "default.yaml"
    cfg = load_config(PosttrainConfig, path, [])
    assert to_dict(cfg) == to_dict(PosttrainConfig())
    assert cfg.stages == ["sft", "dpo", "grpo"] and cfg.grpo.max_completion_length <= 64


def test_cli_prints_one_line_error(tmp_path, capsys):
    bad = tmp_path / "sft.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    rc = main(["sft", f"model={tmp_path}", f"data={bad}", f"out={tmp_path / 'o'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "sft.jsonl:1: not valid JSON" in err and "Traceback" not in err


def test_remit_error_base():
    assert issubclass(DataError, RemitError) and issubclass(ConfigError, RemitError)


def test_non_utf8_data_names_the_line(tmp_path):
    bad = tmp_path / "sft.jsonl"
    bad.write_bytes(b'{"prompt": "a", "response": "b"}\n{"prompt": "caf\xe9", "response": "b"}\n')
    cfg = sft.SFTStageConfig(model=str(tmp_path / "m"), data=str(bad), out=str(tmp_path / "o"))
    with pytest.raises(DataError, match=r"sft.jsonl:2: not UTF-8 \(byte 0xe9 at column 16\)"):
        sft.run(cfg)


@pytest.mark.parametrize("spec,match", [
    ("json:dumps", r"'json:dumps' cannot be called as a reward"),
    ("math:pi", r"'math:pi' is a float, not a reward function"),
    ("collections:OrderedDict", r"is a type, not a reward function"),
    ("posttrain_helpers:write_jsonl", r"'posttrain_helpers:write_jsonl' cannot be called as a reward"),
    ("builtins:len", r"cannot be called as a reward"),
    ("os:listdir", r"cannot be called as a reward"),
])
def test_a_reward_spec_that_is_not_a_reward_is_one_line(tmp_path, spec, match):
    from remit.posttrain.generate import check_reward, weighted_reward

    rows = [{"prompt": "What is 1 + 1?", "answer": "2", "kind": "arith"}]
    with pytest.raises(ConfigError, match=match):
        check_reward(weighted_reward([spec]), rows, "rl.jsonl")


def test_a_reward_returning_the_wrong_shape_is_one_line(tmp_path, monkeypatch):
    import types

    from remit.posttrain.generate import check_reward, weighted_reward

    mod = types.ModuleType("bad_rewards")
    mod.short = lambda prompts, completions, **_: []
    mod.text = lambda prompts, completions, **_: ["good" for _ in completions]
    monkeypatch.setitem(__import__("sys").modules, "bad_rewards", mod)
    rows = [{"prompt": "What is 1 + 1?", "answer": "2", "kind": "arith"}]
    with pytest.raises(ConfigError, match=r"'bad_rewards:short' returned 0 values for 1 completions"):
        check_reward(weighted_reward(["bad_rewards:short"]), rows, "rl.jsonl")
    with pytest.raises(ConfigError, match=r"'bad_rewards:text' returned 'good' \(str\), not a number"):
        check_reward(weighted_reward(["bad_rewards:text"]), rows, "rl.jsonl")
