"""configs/experiments/quality.yaml (issue #7's experiment as a config): it plans without the data, its
``prepare`` section is configs/data/quality.yaml's recipe, its stages are the committed recipe's, and
``prepare`` runs before the start; ``suite_eval`` gives one suite its own eval keys."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from remit.config import load_config
from remit.corpus.stage import CorpusConfig
from remit.errors import ConfigError
from remit.experiment.run import ExperimentConfig, _flywheel, _start, run, seed_flywheel
from remit.flywheel.run import plan

REPO = Path(__file__).resolve().parents[2]
QUALITY = REPO / "configs" / "experiments" / "quality.yaml"


def _stages(cfg: ExperimentConfig, seed: int = 0) -> dict:
    start, _ = _start(cfg, build=False)
    return {st.id: st for st in plan(_flywheel(seed_flywheel(cfg, seed, start), f"seed {seed}"))}


def test_quality_config_is_the_committed_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no prepared data here: planning must not need it
    cfg = load_config(ExperimentConfig, QUALITY, ["seeds=[0]"])
    data = load_config(CorpusConfig, REPO / "configs/data/quality.yaml")
    assert (cfg.prepare["recipe"], cfg.prepare["out_dir"]) == (data.recipe, data.out_dir)
    st = _stages(cfg)
    out = Path(data.out_dir)
    pre = _start(cfg, build=False)[0]
    assert pre == "runs/experiments/quality/start/pretrain"
    mid = st["midtrain-remit-r1-tau3"].config
    assert mid.method.name == "remit" and mid.method.temperature == 3.0 and mid.reference.path.endswith("post-vanilla/grpo")
    assert [Path(s.path) for s in mid.data.sources] == [out / "midtrain.jsonl", out / "pretrain.jsonl"]
    assert (mid.token_budget, mid.data.max_tokens, mid.seed) == (160000, 640000, 0)
    assert Path(st["post-kd"].config.data_dir) == out
    assert st["midtrain-miniplm"].config.method.select_ratio == 0.5
    assert st["midtrain-remit-r2"].config.reference.path.endswith("post-remit-r1/grpo")
    assert st["midtrain-sft-guided"].config.reference.path.endswith("post-vanilla/sft")
    # paper10: the first 20 examples per task; the held-out gold set whole (suite_eval), also along the curves
    assert (st["eval-kd+post-paper10"].config.limit, st["eval-kd+post-paper10"].config.chat) == (20, True)
    assert st["eval-kd+post-paper10"].config.seed == 1234  # the committed evals' few-shot seed
    gold = st["eval-kd-gold"].config
    assert gold.limit is None and Path(gold.gold_file) == out / "heldout_gold.jsonl"
    curve = sorted(s.info["tokens"] for s in st.values() if s.kind == "curve" and s.label == "vanilla")
    assert curve == [0, 24576, 49152, 73728, 98304, 122880, 147456, 163840]  # the committed run's checkpoints
    assert st["curve-vanilla-24576-gold"].config.limit is None


def test_suite_eval_names_a_suite_of_eval_suites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"suite_eval.world: give eval keys of one of eval_suites \(paper10, gold\)"):
        _stages(load_config(ExperimentConfig, QUALITY, ["seeds=[0]", "flywheel.suite_eval={world: {limit: 5}}"]))


def test_prepare_runs_before_the_start(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "tests" / "corpus"))
    from test_prepare import fake_shared

    shared = fake_shared(tmp_path / "shared")
    with pytest.raises(ConfigError, match="prepare: Unknown config key 'recipes'"):
        load_config(ExperimentConfig, None, ["prepare={recipes: quality}"])
    cfg = load_config(ExperimentConfig, None, [
        f"runs_dir={tmp_path / 'runs'}", "flywheel={use_world: false}", "metric=gold/gold/bpb",
        f"prepare={yaml.safe_dump({'out_dir': str(tmp_path / 'data'), 'shared_data': str(shared), 'pretrain_chars': 20000}, default_flow_style=True).strip()}"])
    with pytest.raises(ConfigError, match="pretrain: data.sources is empty"):
        run(cfg)  # the start cannot be planned (no pre-training data given): after prepare ran
    assert (tmp_path / "data" / "midtrain.jsonl").is_file() and (tmp_path / "data" / "manifest.json").is_file()
