"""The confirmatory surface of ``remit experiment``: lists of arms, test kinds, controls, standalone hypotheses and
the sequential extension; each parsed, validated (one line naming the key) and tested on hand values."""

from __future__ import annotations

import pytest

from remit.config import load_config
from remit.errors import ConfigError
from remit.experiment.config import ExperimentConfig

FULL = [
    "seeds=[0,1,2,3,4]",
    "hypotheses=[{name: H1, treatment: [remit-r1, remit-r1@chat], baseline: [vanilla, vanilla@chat], margin: 2.0},"
    " {name: H2, treatment: remit-r1+post@chat, baseline: vanilla+post@chat, margin: 1.5},"
    " {name: H5, treatment: remit-half, baseline: vanilla, test: noninferiority, margin: 1.0, standalone: true}]",
    "controls=[{name: placebo, treatment: placebo, baseline: vanilla, test: equivalence, margin: 2.0}]",
    "extension={seeds: [5,6,7,8,9], alpha_first: 0.01, window: [0.01, 0.30], hypotheses: [H1, H2]}",
]


def _cfg(*over: str) -> ExperimentConfig:
    return load_config(ExperimentConfig, None, list(over))


def test_confirmatory_keys_parse():
    cfg = _cfg(*FULL)
    h1, h2, h5 = cfg.hypotheses
    assert h1.treatment == ["remit-r1", "remit-r1@chat"] and h1.label == "H1" and h2.treatment == "remit-r1+post@chat"
    assert h1.arms == ["remit-r1", "remit-r1@chat", "vanilla", "vanilla@chat"]
    assert (h5.test, h5.margin, h5.standalone, h1.test, h1.standalone) == ("noninferiority", 1.0, True, "superiority", False)
    assert cfg.controls[0].test == "equivalence"
    assert cfg.extension.seeds == [5, 6, 7, 8, 9] and cfg.extension.window == [0.01, 0.30]
    assert cfg.stage1_seeds == [0, 1, 2, 3, 4]
    assert _cfg(*FULL[:2], "seeds=[0,1,2,3,4,5,6,7,8,9]", *FULL[3:]).stage1_seeds == [0, 1, 2, 3, 4]
    assert not _cfg("extension={}").extension and _cfg().controls == []


@pytest.mark.parametrize("over,match", [
    ("hypotheses=[{treatment: [], baseline: vanilla}]", r"hypotheses\[0\].treatment: name an arm label"),
    ("hypotheses=[{treatment: [a, a], baseline: vanilla}]", r"hypotheses\[0\].treatment=\['a', 'a'\]: an arm is listed twice"),
    ("hypotheses=[{treatment: [a, b], baseline: [b, a]}]", r"treatment = baseline = 'mean\(a, b\)'"),
    ("hypotheses=[{treatment: a, baseline: b, test: equivalent}]", r"hypotheses\[0\].test='equivalent' is not accepted"),
    ("hypotheses=[{treatment: a, baseline: b, test: noninferiority}]", r"hypotheses\[0\].margin=0: test: noninferiority needs"),
    ("controls=[{treatment: a, baseline: b, test: equivalence, margin: 2, alternative: less}]",
     r"controls\[0\].alternative='less': only test: superiority"),
    ("controls=[{treatment: a, baseline: b, standalone: true}]", r"controls\[0\].standalone: only hypotheses"),
    ("controls=[{name: H1, treatment: a, baseline: b}]", "the name 'H1' is used twice"),
    ("extension={alpha_first: 0.01}", r"extension.seeds: name the extension seeds"),
    ("extension={seeds: [5], alpha_first: 0.05, window: [0.01, 0.3], hypotheses: [H1]}",
     r"extension.alpha_first=0.05: give 0 < alpha_first < alpha \(0.05\)"),
    ("extension={seeds: [5], alpha_first: 0.01, window: [0.3, 0.01], hypotheses: [H1]}", r"extension.window=\[0.3, 0.01\]"),
    ("extension={seeds: [5], alpha_first: 0.01, window: [0.01, 0.3], hypotheses: [H9]}",
     r"extension.hypotheses\[0\]='H9': not a hypothesis name \(H1, H2, H5\)"),
    ("extension={seeds: [0,1,2,3], alpha_first: 0.01, window: [0.01, 0.3], hypotheses: [H1]}", "stage 1 .* at least 2 seeds"),
])
def test_confirmatory_errors_name_the_key(over, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(*FULL[:3], over)
