"""The typed config loader: YAML + key=value overrides, clear errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from remit.config import (
    ConfigError,
    check_range,
    config_hash,
    load_config,
    save_config,
    to_dict,
)


@dataclass
class Optim:
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])

    def validate(self) -> None:
        check_range("lr", self.lr, 0, None, lo_open=True)


@dataclass
class Cfg:
    name: str = "run"
    steps: int = 10
    method: Literal["ntp", "remit"] = "ntp"
    use_x: bool = False
    ref: str | None = None
    optim: Optim = field(default_factory=Optim)


def test_defaults_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("steps: 20\noptim:\n  lr: 0.01\n")
    cfg = load_config(Cfg, p, ["optim.lr=2e-4", "method=remit", "use_x=true", "optim.betas=[0.8, 0.9]"])
    assert cfg.steps == 20
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.method == "remit" and cfg.use_x is True
    assert cfg.optim.betas == [0.8, 0.9]
    assert cfg.ref is None


def test_unknown_key_names_key_and_suggests(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lrr.*Did you mean 'lr'"):
        load_config(Cfg, None, ["optim.lrr=1"])
    p = tmp_path / "c.yaml"
    p.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*stepz.*Accepted keys: method, name, optim, ref, steps, use_x"):
        load_config(Cfg, p)


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="method.*Accepted values: ntp, remit"):
        load_config(Cfg, None, ["method=rho"])
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        load_config(Cfg, None, ["steps=ten"])
    with pytest.raises(ConfigError, match=r"optim\.lr=-1.0 is out of range"):
        load_config(Cfg, None, ["optim.lr=-1"])
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(Cfg, None, ["steps"])


def test_invalid_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("steps: 1\noptim: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+: invalid YAML"):
        load_config(Cfg, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Cfg, tmp_path / "missing.yaml")


def test_save_roundtrip_and_hash(tmp_path):
    cfg = load_config(Cfg, None, ["steps=7", "ref=/x"])
    out = save_config(cfg, tmp_path / "out" / "config.yaml")
    again = load_config(Cfg, out)
    assert to_dict(again) == to_dict(cfg)
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(load_config(Cfg, None, ["steps=8"])) != config_hash(cfg)


def test_empty_method_params_leave_the_config_and_its_hash_as_before():
    """`method.params` is omitted while empty, so outputs made before the field existed are still reused."""
    from remit.config import config_hash, to_dict
    from remit.midtrain.config import MethodConfig, MidtrainConfig

    assert "params" not in to_dict(MethodConfig()) and to_dict(MethodConfig(params={"a": 1}))["params"] == {"a": 1}
    assert config_hash(MidtrainConfig()) != config_hash(MidtrainConfig(method=MethodConfig(params={"a": 1})))
