"""The lean evaluation path: ``limit`` cuts the test split before lm-eval sees it, no environment subprocesses."""

from __future__ import annotations

import contextlib
import subprocess

import pytest


def _world_cfg(model, world, out, **kw):
    from remit.eval.run import EvalConfig

    return EvalConfig(model=str(model), suite="world", world_dir=str(world), out_dir=str(out), world_max_gen_toks=8,
                      **kw)


def test_limit_cuts_only_the_test_split(shared_data, tiny_tokenizer):
    if not (shared_data / "gsm8k").is_dir():
        pytest.skip(f"shared data not found at {shared_data}")
    from remit.eval.tasks import BuildOptions, build_tasks

    tasks = build_tasks("gsm8k", BuildOptions(data_dir=str(shared_data), limit=3, tokenizer=tiny_tokenizer))
    assert len(tasks["gsm8k"].eval_docs) == 3 and len(tasks["gsm8k:gold"].eval_docs) == 3
    assert len(tasks["gsm8k"].fewshot_docs()) == 7473  # the few-shot pool stays whole: same sampled shots
    assert set(tasks["gsm8k:gold"].dataset) == {"test"}  # the 0-shot companion is not given the train split
    full = build_tasks("gsm8k", BuildOptions(data_dir=str(shared_data), tokenizer=tiny_tokenizer))
    assert len(full["gsm8k"].eval_docs) == 1319
    assert list(full["gsm8k"].eval_docs)[:3] == list(tasks["gsm8k"].eval_docs)


def test_lean_eval_gives_the_same_results_and_spawns_no_subprocess(tiny_model_dir, mini_world, tmp_path, monkeypatch):
    import lm_eval.evaluator as ev

    from remit.eval import run as run_mod
    from remit.eval import tasks as tasks_mod

    spawned: list = []
    real_popen = subprocess.Popen.__init__

    def counting(self, *a, **kw):
        spawned.append(a[0] if a else kw.get("args"))
        return real_popen(self, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", counting)
    saved = ev.add_env_info
    lean = run_mod.evaluate(_world_cfg(tiny_model_dir, mini_world, tmp_path / "lean", limit=4))
    assert spawned == [] and ev.add_env_info is saved  # restored after the call

    # The former path: every test doc handed to lm-eval and its environment report (git, collect_env, ...).
    monkeypatch.setattr(tasks_mod, "_first", lambda docs, limit: docs)
    monkeypatch.setattr(run_mod, "_no_env_info", contextlib.nullcontext)
    full = run_mod.evaluate(_world_cfg(tiny_model_dir, mini_world, tmp_path / "full", limit=4))
    assert len(spawned) >= 1
    assert lean["tasks"] == full["tasks"] and lean["per_example"] == full["per_example"]
    assert lean["tasks"]["world"]["exact_match"]["n"] == 4
