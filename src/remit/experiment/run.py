"""``remit experiment``: arms x seeds from one start, read and tested at the seed level.

    remit experiment --config configs/experiments/chain.yaml            # train what is missing, then analyse
    remit experiment --config configs/experiments/chain.yaml jobs=2     # two seeds at once (one process each)
    remit experiment --config configs/experiments/chain.yaml analyze_only=true

``prepare`` (a ``remit prepare`` config) builds a data recipe's files first, once. Layout of
``<runs_dir>/<name>/``: ``start/`` (world + pre-training, built once from the flywheel section
unless ``start_checkpoint`` is given), ``seed<s>/`` (one ``remit flywheel`` per seed: ``seed=s``, the
shared world and start checkpoint; its stages are the arms), ``configs/seed<s>.yaml`` (the exact flywheel
config each seed ran), ``logs/seed<s>.log``, and the results: ``results.md``, ``summary.json`` (per-seed
and per-example values of every arm; with ``curves``, every curve point), ``contrasts.png``, ``curves.png``.
Extra arms (``arms``: budget, placebo, a method knob, another data mix) and curves at fixed token counts
(``curves``) are the flywheel's (:mod:`remit.flywheel.run`); docs/experiments.md shows both.

Planning goes through the flywheel's planner (every stage config of every seed validated before anything
runs); a finished stage is reused and an interrupted one resumes, so re-running the same command after a
kill continues where it stopped. Reading a finished seed goes through the report's run-folder reader
(:func:`remit.report.build.load_run`), and the statistics through :mod:`remit.eval.stats`
(:mod:`remit.experiment.analyze`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from remit.config import build_config, save_config
from remit.errors import ConfigError, RemitError
from remit.experiment.analyze import analyze
from remit.experiment.config import Contrast, ExperimentConfig, arm_list
from remit.flywheel.config import FlywheelConfig, deep_merge
from remit.utils.io import atomic_write_text

__all__ = ["Contrast", "ExperimentConfig", "run", "seed_flywheel"]


def _base_flywheel(cfg: ExperimentConfig) -> dict[str, Any]:
    """The flywheel every seed runs (before its seed and paths): the YAML, the ``flywheel`` keys, the arms
    and the curves."""
    data: dict[str, Any] = {}
    if cfg.flywheel_config:
        p = Path(cfg.flywheel_config)
        if not p.is_file():
            raise ConfigError(f"flywheel_config={cfg.flywheel_config}: file not found")
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of flywheel keys")
    data = deep_merge(data, cfg.flywheel)
    if cfg.arms:
        data["arms"] = list(cfg.arms)
    data.setdefault("arms", [])  # an experiment's arms are its own, not the embedded default's A/A arm
    if cfg.curves:
        data["curves"] = cfg.curves.flywheel(cfg.curve_metrics)
    return data


def _flywheel(data: dict[str, Any], section: str) -> FlywheelConfig:
    return build_config(FlywheelConfig, data, section)


def seed_flywheel(cfg: ExperimentConfig, seed: int, start: str) -> dict[str, Any]:
    """The flywheel config (a mapping) that seed ``seed`` runs from the start checkpoint ``start``."""
    root = Path(cfg.runs_dir) / cfg.name
    data = deep_merge(_base_flywheel(cfg), {"runs_dir": str(root), "name": f"seed{seed}", "seed": seed,
                                            "start_checkpoint": start, "world": {"seed": cfg.start_seed}})
    data["report"] = bool(cfg.flywheel.get("report", False))  # per-seed reports only when asked for here
    return data


def _labels(stages) -> set[str]:
    return {st.label for st in stages if st.kind == "eval" and st.label}


def _check_arms(cfg: ExperimentConfig, labels: set[str]) -> None:
    for key, items in (("hypotheses", cfg.hypotheses), ("exploratory", cfg.exploratory), ("controls", cfg.controls)):
        for i, c in enumerate(items):
            if c.run_if:  # its arms come from a follow-up run (reported as not run until they exist)
                continue
            for side in ("treatment", "baseline"):
                for arm in arm_list(getattr(c, side)):
                    if arm not in labels:
                        raise ConfigError(f"{key}[{i}].{side}={arm!r} is not an arm of this experiment's flywheel; "
                                          f"its arms are: {', '.join(sorted(labels))}")


def _start(cfg: ExperimentConfig, *, build: bool) -> tuple[str, set[str]]:
    """(pre-annealing checkpoint, arm labels). Plans the start flywheel (validating every section) and, with
    ``build``, runs its world and pre-training stages once."""
    from remit.flywheel.run import plan

    root = Path(cfg.runs_dir) / cfg.name
    data = deep_merge(_base_flywheel(cfg), {"runs_dir": str(root), "name": "start", "seed": cfg.start_seed,
                                            "report": False})
    if cfg.start_checkpoint:
        data["start_checkpoint"] = cfg.start_checkpoint
    stages = plan(_flywheel(data, "flywheel"))
    labels = _labels(stages) - {"pre-annealing"}
    start = cfg.start_checkpoint
    for st in stages:
        if st.kind == "pretrain":
            start = st.config.out_dir
        if st.kind not in ("world", "pretrain"):
            break
        if build:
            print(f"[experiment] start: {st.id}", flush=True)
            st.runner(st.config)  # reused when finished with the same config
    return start, labels


def _run_seed(cfg: ExperimentConfig, seed: int, start: str) -> float:
    root = Path(cfg.runs_dir) / cfg.name
    conf = atomic_write_text(root / "configs" / f"seed{seed}.yaml",
                             yaml.safe_dump(seed_flywheel(cfg, seed, start), sort_keys=False))
    log = root / "logs" / f"seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "remit.cli", "flywheel", "--config", str(conf)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        _CHILDREN.add(proc)
        try:
            rc = proc.wait()
        finally:
            _CHILDREN.discard(proc)
    if rc != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        raise RemitError(f"seed {seed}: remit flywheel failed (exit {rc}): {tail[0]} (log: {log})")
    return time.time() - t0


# The seed flywheels running now: a SIGTERM to `remit experiment` stops them too (they are separate processes
# with their own command lines, so `kill <experiment pid>` alone would leave them training into the folders).
_CHILDREN: set[subprocess.Popen] = set()


def _stop_children(signum, _frame) -> None:
    for proc in list(_CHILDREN):
        proc.terminate()
    raise SystemExit(128 + signum)


def _config_file(argv: list[str]) -> str:
    """The ``--config`` file of a ``remit experiment`` command line (the pre-registration the analysis checks
    against git); empty when the process is not that command."""
    from remit import cli

    if len(argv) < 2 or Path(argv[0]).name not in ("remit", "cli.py"):
        return ""
    try:
        rest = cli.split_plugins(argv[1:])[1]
        if rest[:1] != ["experiment"]:
            return ""
        return cli.parse_args(rest[1:])[0] or ""
    except RemitError:
        return ""


def run(cfg: ExperimentConfig) -> Path:
    root = Path(cfg.runs_dir) / cfg.name
    if cfg.prepare and not cfg.analyze_only:
        from remit.corpus import stage as corpus

        print(f"[experiment] prepare: {corpus.run(build_config(corpus.CorpusConfig, cfg.prepare, 'prepare'))}",
              flush=True)  # reused when finished with the same config and inputs
    start, labels = _start(cfg, build=not cfg.analyze_only)
    _check_arms(cfg, labels)
    if cfg.start_only:
        for s in cfg.seeds:  # the seeds' stage configs are validated all the same
            _flywheel(seed_flywheel(cfg, s, start), f"seed {s}")
        print(f"[experiment] start only: {start} (no arm trained)", flush=True)
        return root / "start"
    if not cfg.analyze_only:
        for s in cfg.seeds:  # every seed's stage configs validated before the first seed trains
            _flywheel(seed_flywheel(cfg, s, start), f"seed {s}")
        save_config(cfg, root / "config.yaml")
        t0 = time.time()
        print(f"[experiment] {cfg.name}: {len(cfg.seeds)} seeds x {len(labels)} arms, {cfg.jobs} at a time -> {root}",
              flush=True)
        done: list[int] = []

        def one(seed: int) -> None:
            wall = _run_seed(cfg, seed, start)
            done.append(seed)
            left = len(cfg.seeds) - len(done)
            eta = (time.time() - t0) / len(done) * left
            print(f"[experiment] seed {seed} done in {wall / 60:.1f} min ({len(done)}/{len(cfg.seeds)}; "
                  f"ETA ~{eta / 60:.1f} min)", flush=True)

        errors = []
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGTERM, _stop_children) if main else None
        try:
            with ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
                for fut in [pool.submit(one, s) for s in cfg.seeds]:
                    try:
                        fut.result()
                    except RemitError as e:
                        errors.append(str(e))
        finally:
            if main:
                signal.signal(signal.SIGTERM, old)
        if errors:
            raise RemitError("; ".join(errors))
    out = analyze(cfg, command=" ".join(["remit", *sys.argv[1:]]) if len(sys.argv) > 1 else "remit experiment",
                  config_file=_config_file(sys.argv))
    print(f"[experiment] results: {out}", flush=True)
    return out
