"""The method table: what each built-in method needs, config validation asking it, arms, registration."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.methods import Method, arm_names, get_arm, get_method, method_names, register_method, role_of
from remit.midtrain.config import MethodConfig, MidtrainConfig
from remit.objectives import KD, NTP, ReMiT, Rho1


@pytest.fixture
def fresh_table(monkeypatch):
    """A registration in a test does not leak into the next one."""
    monkeypatch.setattr("remit.methods.registry._REGISTERED", {})
    monkeypatch.setattr("remit.methods.registry._REPLACED", {})


def test_builtin_table_says_what_each_method_needs():
    assert method_names()[:5] == ["ntp", "remit", "rho1", "kd", "miniplm"]
    need = {n: get_method(n).reference for n in ["ntp", "remit", "rho1", "kd", "miniplm"]}
    assert need == {"ntp": "none", "remit": "logps", "rho1": "logps", "kd": "logits", "miniplm": "scorer"}
    assert [n for n in method_names() if get_method(n).prepare is not None] == ["miniplm"]
    assert {n: role_of(n) for n in ["ntp", "remit", "kd", "sft_guided", "vanilla", "nope"]} == {
        "ntp": "vanilla", "remit": "remit", "kd": "baseline", "sft_guided": "baseline", "vanilla": "vanilla",
        "nope": None}


def test_builds_objectives_from_the_config():
    cfg = MidtrainConfig(method=MethodConfig(name="remit", epsilon=0.1, temperature=2.0))
    cfg.logging.hist_bins = 7
    obj = get_method("remit").build(cfg)
    assert isinstance(obj, ReMiT) and (obj.epsilon, obj.temperature, obj.hist_bins) == (0.1, 2.0, 7)
    cfg.method, cfg.reference.chunk_size = MethodConfig(name="kd", alpha=0.3), 64
    assert get_method("kd").build(cfg) == KD(alpha=0.3, temperature=1.0, chunk_size=64)
    cfg.method = MethodConfig(name="rho1", keep_ratio=0.4)
    assert get_method("rho1").build(cfg) == Rho1(keep_ratio=0.4)
    assert isinstance(get_method("miniplm").build(cfg), NTP)


def test_config_validation_asks_the_table(tiny_model_dir):
    base = [f"model.path={tiny_model_dir}", "data.sources=[{path: x.jsonl}]"]
    with pytest.raises(ConfigError, match=r"method\.name='nope' is not a known method\. Accepted values: ntp, remit"):
        load_config(MidtrainConfig, None, base + ["method.name=nope"])
    with pytest.raises(ConfigError, match=r"method\.name=kd needs reference\.path: KD needs full distributions"):
        load_config(MidtrainConfig, None, base + ["method.name=kd", "reference.cache=/c"])
    with pytest.raises(ConfigError, match=r"method\.name=rho1 needs a reference"):
        load_config(MidtrainConfig, None, base + ["method.name=rho1"])
    # a key of another method is refused rather than silently ignored, naming who reads it
    with pytest.raises(ConfigError, match=r"method\.epsilon=0\.1 does not apply to method\.name=ntp \(it is read by "
                                          r"remit, remit_placebo\)"):
        load_config(MidtrainConfig, None, base + ["method.epsilon=0.1"])
    with pytest.raises(ConfigError, match=r"method\.frozen_base=True does not apply to method\.name=rho1"):
        load_config(MidtrainConfig, None, base + ["method.name=rho1", "reference.path=r", "method.frozen_base=true"])
    with pytest.raises(ConfigError, match=r"method\.params\.decay is not a parameter of method\.name=ntp"):
        load_config(MidtrainConfig, None, base + ["method.params={decay: 0.5}"])


def test_register_method_and_its_params(fresh_table, tiny_model_dir):
    mine = register_method(Method(name="mine", build=lambda cfg: NTP(), params={"decay": 0.5}, options=("epsilon",)))
    assert "mine" in method_names() and get_method("mine") is mine and get_arm("mine").guide == "none"
    assert "mine" in arm_names("baseline")
    cfg = load_config(MidtrainConfig, None, [f"model.path={tiny_model_dir}", "data.sources=[{path: x.jsonl}]",
                                             "method.name=mine", "method.params={decay: 0.25}", "method.epsilon=0.3"])
    assert cfg.method.param("decay") == 0.25 and cfg.method.epsilon == 0.3
    assert dataclasses.replace(cfg.method, params={}).param("decay") == 0.5  # the method's default
    with pytest.raises(TypeError, match="remit.methods.Method"):
        register_method("mine")
    with pytest.raises(ConfigError, match="method name 'a b'"):
        register_method(Method(name="a b", build=lambda cfg: NTP()))


def test_arms():
    assert get_arm("sft_guided").method == "remit" and get_arm("sft_guided").guide == "sft"
    assert get_arm("sft_guided").run_label == "sft-guided"
    assert (get_arm("kd").method, get_arm("kd").guide, get_arm("kd").run_label) == ("kd", "rl", "kd")
    assert get_arm("vanilla").method == "ntp" and get_arm("vanilla").guide == "none"
    assert arm_names("baseline")[:4] == ["sft_guided", "rho1", "kd", "miniplm"]  # not vanilla / ntp / remit
    with pytest.raises(ConfigError, match=r"baselines: 'nope' is not known\. Accepted values: sft_guided, rho1, kd, miniplm, remit_placebo"):
        get_arm("nope")


def test_plugins_named_in_the_environment_are_loaded(fresh_table, monkeypatch):
    from remit.methods import registry

    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    monkeypatch.setenv("REMIT_PLUGINS", "posdecay_plugin")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.delitem(sys.modules, "posdecay_plugin", raising=False)
    assert get_method("posdecay").params == {"decay": 0.5}
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    monkeypatch.setenv("REMIT_PLUGINS", "no_such_plugin_module")
    with pytest.raises(ConfigError, match="plugin 'no_such_plugin_module' could not be imported"):
        registry.load_plugins()


def _plugin(tmp_path, monkeypatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


@pytest.mark.parametrize("body,match", [
    ("x = 1\nraise RuntimeError('boom')\n", r"plugin 'p_bad' failed while it was imported at .*p_bad.py:2: RuntimeError: boom"),
    ("def f(:\n    pass\n", r"plugin 'p_bad' has a syntax error at .*p_bad.py:1"),
    ("from remit.methods import register_method\nregister_method('mine')\n",
     r"plugin 'p_bad' failed while it was imported at .*p_bad.py:2: TypeError: register_method takes a "
     r"remit.methods.Method, got str"),
])
def test_a_broken_plugin_is_one_line_naming_it_and_the_line(fresh_table, tmp_path, monkeypatch, body, match):
    from remit.methods import registry

    name = _plugin(tmp_path, monkeypatch, "p_bad", body)
    with pytest.raises(ConfigError, match=match):
        registry.load_plugins([name])


def test_replacing_a_method_needs_replace_true_and_changes_the_config_hash(fresh_table, tmp_path, monkeypatch):
    from remit.config import config_hash
    from remit.methods import registry

    cfg = load_config(MidtrainConfig, None, ["model.path=m", "data.sources=[{path: x.jsonl}]", "method.name=ntp"])
    before = config_hash(cfg)
    body = ("from remit.methods import Method, register_method\nfrom remit.objectives import NTP\n"
            "register_method(Method(name='ntp', build=lambda cfg: NTP()){})\n")
    with pytest.raises(ConfigError, match=r"plugin 'p_ntp' failed .*method 'ntp' already exists \(built-in, "
                                          r"remit.methods.ntp\).*replace=True"):
        registry.load_plugins([_plugin(tmp_path, monkeypatch, "p_ntp", body.format(""))])
    assert config_hash(cfg) == before and registry.replaced_methods() == {}
    registry.load_plugins([_plugin(tmp_path, monkeypatch, "p_ntp", body.format(", replace=True"))])
    assert registry.replaced_methods() == {"ntp": "p_ntp.<lambda>"} and config_hash(cfg) != before
    register_method(Method(name="mine", build=lambda cfg: NTP()))
    register_method(Method(name="mine", build=lambda cfg: NTP()))  # the same module again: allowed
    with pytest.raises(ConfigError, match=r"p_ntp.py:3: ConfigError: method 'mine' already exists \(from .*test_registry"):
        registry.load_plugins([_plugin(tmp_path, monkeypatch, "p_ntp",
                                       body.format(", replace=True").replace("'ntp'", "'mine'")
                                       .replace(", replace=True", ""))])
