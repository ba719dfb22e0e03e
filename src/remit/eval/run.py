"""Evaluate a model on a benchmark suite with lm-evaluation-harness (in process, one model load).

    remit eval --model runs/x/midtrain --suite paper10 --data-dir ../shared/data --limit 50
    remit eval --model runs/x/midtrain --suite world world_dir=runs/x/world
    remit eval --model DIR tasks=bbh,copa --data-dir ../shared/data

Suites: ``paper10`` (GSM8K, MATH, HumanEval, MBPP, ARC-E/C, MMLU, BoolQ, PIQA, WinoGrande), ``world``
(the embedded world's held-out tasks), ``extra`` (BBH, OpenBookQA, SIQA, COPA), ``gold`` (bits per byte of the targets of ``gold_file``, a jsonl
of ``{"context", "target"}`` rows: held-out text such as the quality recipe's ``heldout_gold.jsonl``); ``tasks=a,b`` picks
any of them by name. ``world_probe=true`` adds the world's style probe to the ``world`` entry: ``p_worked``
(teacher-forced: the probability that the answer starts with the worked steps rather than ``The answer is``)
and ``worked_exact_match`` / ``direct_exact_match`` (greedy answers forced to start either way; left out with
``world_probe_style_only=true``). ``data_dir`` binds every task to local files (offline); without it the usual
hub datasets are loaded. Shots, prompts and metrics: the table in ``remit/eval/tasks.py``.
Writes ``results.json`` (per task and metric: value, stderr, n, and per-example values for the
paired bootstrap of ``remit compare``) and ``results.md`` into ``out_dir``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit import sandbox
from remit.config import check_range, save_config, to_dict
from remit.errors import ConfigError, RemitError
from remit.eval.results import collect, to_markdown
from remit.eval.tasks import KNOWN, SUITES, BuildOptions, build_tasks
from remit.manifest import is_complete, write_manifest
from remit.models import load_model, load_tokenizer
from remit.utils.integrations import default_device
from remit.utils.io import atomic_dir, atomic_write_json, atomic_write_text
from remit.utils.lock import out_dir_lock


@dataclass
class EvalConfig:
    model: str = ""                      # model directory (HF checkpoint) or hub id
    tokenizer: str | None = None         # default: the model's own
    suite: str = "paper10"               # paper10 | world | extra | gold
    tasks: list[str] = field(default_factory=list)  # explicit task names (replace the suite's list)
    data_dir: str | None = None          # e.g. ../shared/data; None = hub datasets
    world_dir: str | None = None         # folder with eval.jsonl (suite/task 'world')
    # suite/task 'gold': bits per byte of the targets of a jsonl of {"context", "target"} rows (held-out text)
    gold_file: str = field(default="", metadata={"omit_if_empty": True})
    out_dir: str = ""                    # default: runs/eval/<model name>-<suite>
    limit: int | None = None             # first N examples of each task
    batch_size: int = 32                 # lm-eval HFLM batch size (log-likelihood and generation)
    max_length: int | None = None        # context window; default: the model's
    max_gen_toks: int | None = None      # cap on every task's generation budget
    code_samples: int = 0                # > 0: also sample this many programs per problem for pass@k
    code_ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    code_timeout_s: float = 10.0
    code_workers: int = 2                # sandbox processes run at once
    world_template: str = "Question: {prompt}\nAnswer:"  # the world's pretraining Q/A format
    world_max_gen_toks: int = 128
    # The world's style probe: p_worked (teacher-forced: does the answer start with the worked steps or with
    # "The answer is"?) and the accuracy of answers forced to start either way (two more greedy passes).
    world_probe: bool = field(default=False, metadata={"omit_if_empty": True})
    # with world_probe: the teacher-forced start probabilities only (no forced generations; seconds per model)
    world_probe_style_only: bool = field(default=False, metadata={"omit_if_empty": True})
    chat: bool = False                   # apply the tokenizer's chat template (post-trained models)
    seed: int = 1234
    device: str | None = None            # default: cuda if visible, else cpu
    dtype: str | None = None             # default: fp32 on CPU, bf16 on GPU
    force: bool = False                  # re-run even if out_dir holds the same finished eval
    sandbox_unenforced_ok: bool = False  # run code benchmarks even where the sandbox misses a kernel layer

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("model: required (a model directory or hub id), e.g. --model runs/x/midtrain")
        if not self.tasks and self.suite not in SUITES:
            raise ConfigError(f"suite={self.suite!r} is not accepted. Accepted values: {', '.join(SUITES)}.")
        bad = [t for t in self.tasks if t not in KNOWN and t not in SUITES]
        if bad:
            raise ConfigError(f"tasks: unknown task '{bad[0]}'. Known tasks: {', '.join(KNOWN)} "
                              f"(or a suite: {', '.join(SUITES)}).")
        if self.limit is not None:
            check_range("limit", self.limit, 1)
        check_range("batch_size", self.batch_size, 1)
        check_range("code_samples", self.code_samples, 0)
        check_range("code_workers", self.code_workers, 1)
        check_range("world_max_gen_toks", self.world_max_gen_toks, 1)
        if self.world_probe_style_only and not self.world_probe:
            raise ConfigError("world_probe_style_only=true needs world_probe=true (it keeps only the probe's "
                              "teacher-forced part)")
        if "{prompt}" not in self.world_template:
            raise ConfigError("world_template must contain '{prompt}'")

    def task_names(self) -> list[str]:
        names: list[str] = []
        for t in self.tasks or [self.suite]:
            for n in SUITES.get(t, [t]):
                if n not in names:
                    names.append(n)
        return names


def _default_out(cfg: EvalConfig) -> Path:
    slug = "-".join(p for p in Path(cfg.model.rstrip("/")).parts[-2:] if p not in ("/", ".", ".."))
    return Path("runs/eval") / f"{slug or 'model'}-{cfg.suite if not cfg.tasks else '+'.join(cfg.tasks)}"


def _context_length(c: Any) -> int:
    """The model's context window from its config (2048 when it names none)."""
    return int(getattr(c, "max_position_embeddings", None) or getattr(c, "n_positions", None) or 2048)


@contextlib.contextmanager
def _no_env_info():
    """Skip lm-eval's environment report (``git describe`` and torch's collect_env: 11 subprocesses, ``pip
    list`` among them, on every call); remit records its own config and versions in the manifest."""
    import lm_eval.evaluator as ev

    saved = ev.add_env_info, ev.get_git_commit_hash
    ev.add_env_info, ev.get_git_commit_hash = (lambda storage: None), (lambda: None)
    try:
        yield
    finally:
        ev.add_env_info, ev.get_git_commit_hash = saved


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the evaluation and return the results dict (no files written)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    names = cfg.task_names()
    if "gold" in names and not cfg.gold_file:
        raise ConfigError("gold_file: required by the 'gold' suite (a jsonl of {\"context\", \"target\"} rows)")
    if "world" in names and not cfg.world_dir:
        raise ConfigError("world_dir: required by the 'world' suite (a folder with eval.jsonl, from `remit world`)")
    device = cfg.device or default_device()
    t0 = time.perf_counter()
    tok = load_tokenizer(cfg.tokenizer or cfg.model)
    for name in ("lm_eval", "lm_eval.api.task", "lm_eval.models.huggingface", "lm_eval.evaluator"):
        logging.getLogger(name).setLevel(logging.ERROR)  # per-task notices about custom datasets
    model = load_model(cfg.model, dtype=cfg.dtype, device=device)
    max_length = cfg.max_length or _context_length(model.config)
    opts = BuildOptions(data_dir=cfg.data_dir, world_dir=cfg.world_dir, gold_file=cfg.gold_file, max_length=max_length,
                        max_gen_toks=cfg.max_gen_toks, code_samples=cfg.code_samples, code_ks=tuple(cfg.code_ks),
                        code_timeout_s=cfg.code_timeout_s, code_workers=cfg.code_workers,
                        world_template=cfg.world_template, world_max_gen_toks=cfg.world_max_gen_toks,
                        world_probe=cfg.world_probe, world_probe_style_only=cfg.world_probe_style_only,
                        tokenizer=tok, limit=cfg.limit)
    task_objs: dict[str, Any] = {}
    for name in names:
        task_objs.update(build_tasks(name, opts))
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=cfg.batch_size, device=device, max_length=max_length)
    t_load = time.perf_counter() - t0
    with _no_env_info():
        out = lm_eval.simple_evaluate(
            model=lm, tasks=list(task_objs.values()), limit=cfg.limit, device=device, batch_size=cfg.batch_size,
            task_manager=TaskManager(include_defaults=False), bootstrap_iters=0, log_samples=True,
            apply_chat_template=cfg.chat, random_seed=cfg.seed, numpy_random_seed=cfg.seed,
            torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed, confirm_run_unsafe_code=False)
    tasks, per_example = collect(out["samples"])
    return {"model": cfg.model, "suite": cfg.suite if not cfg.tasks else ",".join(cfg.tasks),
            "limit": cfg.limit, "data_dir": cfg.data_dir, "tasks": {n: tasks[n] for n in names if n in tasks},
            "per_example": {n: per_example[n] for n in names if n in per_example},
            "timing_s": {"load": round(t_load, 2), "total": round(time.perf_counter() - t0, 2)},
            "config": to_dict(cfg)}


def run(cfg: EvalConfig) -> Path:
    sandbox.configure(unenforced_ok=cfg.sandbox_unenforced_ok)
    out = Path(cfg.out_dir) if cfg.out_dir else _default_out(cfg)
    with out_dir_lock(out, "eval", create=False):  # one eval per folder at a time
        return _run(cfg, out)


def _run(cfg: EvalConfig, out: Path) -> Path:
    if not cfg.force and is_complete(out, cfg):
        return out
    try:
        res = evaluate(cfg)
    except RemitError:
        raise
    except (KeyError, IndexError, ValueError) as e:  # malformed rows surface here from lm-eval's doc handling
        raise RemitError(f"eval of {cfg.model} failed on the data: {type(e).__name__}: {e}") from e
    with atomic_dir(out) as tmp:
        atomic_write_json(tmp / "results.json", res)
        atomic_write_text(tmp / "results.md", to_markdown(res))
        save_config(cfg, tmp / "config.yaml")
        write_manifest(tmp, "eval", cfg, inputs={"model": cfg.model, "data_dir": cfg.data_dir,
                                                 "world_dir": cfg.world_dir}, timing_s=res["timing_s"])
    print(to_markdown(res))
    return out
