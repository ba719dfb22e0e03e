"""The `remit` dispatcher: argument parsing and one-line errors."""

from __future__ import annotations

import pytest

from remit import cli
from remit.errors import RemitError


def test_parse_args_forms():
    cfg, ov, pos = cli.parse_args(["--config", "a.yaml", "x.y=1", "--model", "m", "--resume", "--limit=5"])
    assert cfg == "a.yaml"
    assert ov == ["x.y=1", "model=m", "resume=true", "limit=5"]
    assert pos == []
    _, ov, pos = cli.parse_args(["A", "B", "k=v"], positional="runs")
    assert pos == ["A", "B"] and ov == ["k=v"]
    with pytest.raises(RemitError, match="unexpected argument 'A'"):
        cli.parse_args(["A"])


def test_help_and_unknown_stage(capsys):
    assert cli.main(["--help"]) == 0
    assert "usage: remit <stage>" in capsys.readouterr().out
    assert cli.main(["no-such-stage"]) == 2
    assert "unknown stage 'no-such-stage'" in capsys.readouterr().err


def test_config_error_is_one_line(capsys, tmp_path):
    cli._load_stages()
    if "world" not in cli.STAGES:
        pytest.skip("world stage not present")
    assert cli.main(["world", f"out_dir={tmp_path}", "no_such_key=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("remit world: error: Unknown config key 'no_such_key'")
    assert "Traceback" not in err
