"""Config errors name the key (and what is accepted)."""

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.midtrain.config import MidtrainConfig, PretrainConfig

BASE = ["model.path=m", "data.sources=[{path: d.jsonl}]"]


def test_typo_names_key_and_accepted_keys():
    with pytest.raises(ConfigError, match=r"method\.epsilonn.*Accepted keys.*epsilon.*Did you mean 'epsilon'"):
        load_config(MidtrainConfig, None, BASE + ["method.epsilonn=0.1"])


@pytest.mark.parametrize("override,match", [
    ("method.epsilon=0", r"method\.epsilon=0\.0 is out of range"),
    ("method.epsilon=-1", r"method\.epsilon"),
    ("method.keep_ratio=0", r"method\.keep_ratio"),
    ("method.keep_ratio=1.5", r"method\.keep_ratio"),
    ("method.name=dpo", r"method\.name.*Accepted values: ntp, remit, rho1, kd, miniplm"),
    ("optim.micro_batch_size=3", r"optim\.batch_size=32 must be a multiple"),
    ("schedule.decay_shape=exp", r"schedule\.decay_shape.*Accepted values"),
])
def test_out_of_range_values_refused(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(MidtrainConfig, None, BASE + ["method.name=remit", "reference.path=r", override])


def test_reference_required_and_kd_needs_a_model():
    with pytest.raises(ConfigError, match="needs a reference"):
        load_config(MidtrainConfig, None, BASE + ["method.name=remit"])
    with pytest.raises(ConfigError, match="KD needs full distributions"):
        load_config(MidtrainConfig, None, BASE + ["method.name=kd", "reference.cache=c"])
    cfg = load_config(MidtrainConfig, None, BASE + ["method.name=remit", "reference.cache=c"])
    assert cfg.reference.cache == "c" and cfg.method.keep_ratio == 0.6 and cfg.keep_checkpoints == 2


def test_score_refuses_bf16():
    from remit.midtrain.score import ScoreConfig

    with pytest.raises(ConfigError, match="bfloat16 is refused"):
        load_config(ScoreConfig, None, ["reference=r", "dtype=bfloat16", "data.sources=[{path: d}]"])


def test_pretrain_preset_defaults():
    cfg = load_config(PretrainConfig, None, ["data.sources=[{path: d.jsonl}]"])
    assert cfg.schedule.kind == "constant" and cfg.model.path is None and cfg.optim.lr == 1e-3
