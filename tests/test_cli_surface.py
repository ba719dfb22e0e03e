"""The CLI surface users type: the stage names of ``remit`` and the top-level config keys of each stage.

A renamed or removed stage or key breaks every script and YAML file that uses it, so it must be a
decision: this test fails, naming the stage and the keys, until the table below is updated with it
(and the change is said in the README / docs). Nested keys (``optim.lr``, ``eval.n``) are not pinned.
"""

from __future__ import annotations

import dataclasses
import importlib

from remit import cli

_POST = ["model", "data", "out", "device", "seed", "learning_rate", "max_steps", "batch_size", "grad_accum",
         "max_length", "limit", "logging_steps", "trl", "eval", "sandbox_unenforced_ok", "save_steps",
         "resume"]  # every post-training stage
_TRAIN = ["out_dir", "model", "data", "optim", "schedule", "logging", "token_budget", "max_steps", "seed",
          "checkpoint_every", "keep_checkpoints", "resume", "overwrite", "parallel", "device", "perf",
          "dist_timeout_s", "save_dtype", "fsdp", "checkpoint_async", "snapshot_tokens"]

# stage -> (module, config class, positional field, top-level config keys; their order is not pinned)
SURFACE: dict[str, tuple[str, str, str | None, list[str]]] = {
    "pretrain": ("remit.midtrain.stage", "PretrainConfig", None, _TRAIN),
    "midtrain": ("remit.midtrain.stage", "MidtrainConfig", None, [*_TRAIN, "method", "reference", "smoke"]),
    "score-reference": ("remit.midtrain.score", "ScoreConfig", None, [
        "reference", "tokenizer", "data", "out_dir", "dtype", "batch_size", "shard_rows", "chunk_size", "device",
        "extrapolate_positions", "precision", "dist_timeout_s"]),
    "prepare-data": ("remit.midtrain.prepare", "PrepareConfig", None, ["tokenizer", "data", "out_dir"]),
    "prepare": ("remit.corpus.stage", "CorpusConfig", None, ["recipe", "out_dir", "shared_data", "seed",
                                                              "pretrain_chars"]),
    "plan": ("remit.midtrain.plan", "PlanConfig", None, [*_TRAIN, "method", "reference", "smoke", "plan"]),
    "sft": ("remit.posttrain.sft", "SFTStageConfig", None, [*_POST, "assistant_only_loss", "loss_type", "source"]),
    "dpo": ("remit.posttrain.dpo", "DPOStageConfig", None, [
        *_POST, "beta", "samples_per_prompt", "pairs_per_prompt", "temperature", "top_p", "max_new_tokens",
        "gen_batch_size", "rewards", "reward_weights", "correct_threshold", "min_pairs", "on_no_pairs"]),
    "grpo": ("remit.posttrain.grpo", "GRPOStageConfig", None, [
        *_POST, "num_generations", "max_completion_length", "temperature", "top_p", "beta", "loss_type",
        "scale_rewards", "rewards", "reward_weights", "use_vllm"]),
    "posttrain": ("remit.posttrain.chain", "PosttrainConfig", None, [
        "model", "out", "stages", "data_dir", "sft_data", "rl_data", "eval_data", "device", "seed", "resume", "sft",
        "dpo", "grpo"]),
    "eval": ("remit.eval.run", "EvalConfig", None, [
        "model", "tokenizer", "suite", "tasks", "data_dir", "world_dir", "gold_file", "out_dir", "limit", "batch_size",
        "max_length", "max_gen_toks", "code_samples", "code_ks", "code_timeout_s", "code_workers", "world_template",
        "world_max_gen_toks", "world_probe", "world_probe_style_only", "chat", "seed", "device", "dtype", "force", "sandbox_unenforced_ok"]),
    "compare": ("remit.eval.compare", "CompareConfig", "runs", ["runs", "n_boot", "confidence", "seed", "out"]),
    "experiment": ("remit.experiment.run", "ExperimentConfig", None, [
        "name", "runs_dir", "seeds", "jobs", "start_seed", "start_checkpoint", "flywheel_config", "flywheel", "arms",
        "curves", "prepare", "metric", "hypotheses", "exploratory", "controls", "extension", "alpha", "confidence", "power",
        "n_boot", "gates", "analyze_only", "start_only"]),
    "stats": ("remit.eval.seeds", "SeedStatsConfig", "files", ["files", "confidence", "alpha", "power", "out"]),
    "world": ("remit.world.stage", "WorldConfig", None, [
        "out_dir", "seed", "n_pretrain_docs", "n_midtrain_docs", "n_sft", "n_rl", "n_eval", "difficulty", "kinds",
        "direct_frac", "pretrain_reasoning_frac", "midtrain_general_frac", "qa_per_doc", "qa_per_doc_midtrain",
        "general_doc_chars", "midtrain_chat_frac", "chain_steps", "hard_step_frac", "pretrain_hard_step_frac",
        "sft_direct_frac", "pretrain_chat_frac", "slip_frac"]),
    "flywheel": ("remit.flywheel.run", "FlywheelConfig", None, [
        "name", "runs_dir", "seed", "world", "use_world", "start_checkpoint", "pretrain", "midtrain", "posttrain",
        "eval", "rounds", "baselines", "posttrain_baselines", "arms", "curves", "chat_evals", "style_probe", "eval_suites", "suite_eval", "report",
        "report_options", "quiet",
        "launcher"]),
    "report": ("remit.report.build", "ReportConfig", None, [
        "run_dir", "dynamics", "heatmap", "guidance", "guidance_texts", "sample_text_file", "sample_texts",
        "probe_file", "probe_texts", "max_length", "text_windows", "batch_size", "device", "dtype", "n_boot", "confidence", "seed", "verdict_file",
        "strict", "extra"]),
    "analyze weights": ("remit.report.heatmap", "WeightsConfig", None, [
        "model", "reference", "text", "text_file", "epsilon", "temperature", "out", "max_length", "max_texts",
        "top_k", "min_count", "batch_size", "device", "dtype", "png"]),
    "analyze shift": ("remit.report.shift", "ShiftConfig", "models", [
        "models", "labels", "target", "origin", "probe_file", "probe_texts", "max_texts", "max_length", "batch_size",
        "row_chunk", "vocab_chunk", "device", "dtype", "out"]),
}


def _stages() -> dict[str, cli.Stage]:
    cli._load_stages()
    return dict(cli.STAGES)


def _diff(what: str, expected: list[str], got: list[str]) -> str:
    missing = [k for k in expected if k not in got]
    new = [k for k in got if k not in expected]
    return f"{what}: missing (renamed or removed) {missing or 'none'}, new {new or 'none'}"


def test_stage_names():
    got = list(_stages())
    assert sorted(got) == sorted(SURFACE), _diff("remit stages", list(SURFACE), got)


def test_each_stage_module_class_and_positional():
    stages = _stages()
    for name, (module, config, positional, _) in SURFACE.items():
        assert name in stages, f"remit {name}: the stage is gone from remit.cli"
        st = stages[name]
        assert (st.module, st.config, st.positional) == (module, config, positional), \
            f"remit {name}: now {st.module}.{st.config} (positional {st.positional!r}), " \
            f"expected {module}.{config} (positional {positional!r})"


def test_each_stage_top_level_config_keys():
    stages = _stages()
    wrong = []
    for name, (_, _, positional, keys) in SURFACE.items():
        if name not in stages:
            continue  # test_stage_names says which
        st = stages[name]
        got = [f.name for f in dataclasses.fields(getattr(importlib.import_module(st.module), st.config))]
        if sorted(got) != sorted(keys):
            wrong.append(_diff(f"remit {name} config keys", keys, got))
        if positional is not None:
            assert positional in got, f"remit {name}: positional field '{positional}' is not a config key"
    assert not wrong, "\n".join(wrong)


def test_diff_names_the_keys():
    assert _diff("remit x", ["a", "b"], ["a", "c"]) == "remit x: missing (renamed or removed) ['b'], new ['c']"
