"""The quality experiment of issue #7: does ReMiT beat vanilla and the baselines on real data, over seeds?

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/quality/run.py            # default (~65 min, 1 core)
    ... run.py --scale 2                  # the ~2 h version (bigger budgets, larger eval limit)
    ... run.py --scale 0.05 --seeds 0 --work runs/quality-smoke                       # end-to-end smoke (~3 min)
    ... run.py --analyze-only             # rebuild benchmarks/results/quality/ from a finished work folder

Pipeline (all through the remit stages, see config.yaml):
  prepare (../shared/data -> <work>/data/*.jsonl, train splits only, decontaminated)
  -> pretrain P (fresh Llama + BPE tokenizer, constant LR), shared by every method and seed
  -> per seed s: vanilla_s -> posttrain (SFT -> DPO -> GRPO) = R0_s (SFT model SFT0_s)
                 remit-r1_s (ref R0_s), sft-guided_s (ref SFT0_s), kd_s, rho1_s, miniplm_s (ref R0_s) -> posttrain
                 remit-r2_s (ref R1_s = remit-r1_s post-trained) -> posttrain
  -> paper10 eval (limited, capped generation) of P and of every model before and after post-training
  -> held-out gold bits-per-byte at the intermediate checkpoints of vanilla / remit (sample efficiency)
  -> analyze.py: benchmarks/results/quality/{results.md, results.json, *.png}

Resumable: every stage skips a finished output with the same config (a killed mid-training resumes from
its last checkpoint); re-run the same command to continue. Progress is printed with wall times and
``<work>/ledger.json`` records them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from remit.corpus import stage as corpus  # noqa: E402

T0 = time.time()


def say(msg: str) -> None:
    print(f"[quality {time.time() - T0:7.0f}s] {msg}", flush=True)


class Ledger:
    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {"stages": {}}

    def timed(self, sid: str, fn, *args):
        t = time.time()
        say(f"start {sid}")
        out = fn(*args)
        wall = time.time() - t
        rec = self.data["stages"].get(sid, {})
        if wall > 5 or "wall_s" not in rec:  # a reused stage keeps the wall time of the run that made it
            rec["wall_s"] = round(wall, 1)
        self.data["stages"][sid] = rec
        self.path.write_text(json.dumps(self.data, indent=1))
        say(f"done  {sid} ({wall:.0f}s)")
        return out


def _build(cls, data: dict[str, Any]):
    from remit.config import from_dict, validate_config

    cfg = from_dict(cls, data)
    validate_config(cfg)
    return cfg


def scaled(rec: dict[str, Any], scale: float) -> dict[str, Any]:
    """The recipe with ``scale`` applied (token budgets, post-training steps, eval limit)."""
    r = json.loads(json.dumps(rec))
    r["pretrain_chars"] = int(r["pretrain_chars"] * math.sqrt(max(scale, 0.01)))
    r["pretrain"]["token_budget"] = max(4096 * 4, int(r["pretrain"]["token_budget"] * scale))
    r["midtrain"]["token_budget"] = max(4096 * 4, int(r["midtrain"]["token_budget"] * scale))
    for st in ("sft", "dpo", "grpo"):
        r["posttrain"][st]["max_steps"] = max(2, int(round(r["posttrain"][st]["max_steps"] * scale)))
    r["eval"]["limit"] = max(4, int(r["eval"]["limit"] * scale))
    return r


class Experiment:
    def __init__(self, rec: dict[str, Any], work: Path):
        self.rec, self.work = rec, work
        self.data = work / "data"
        self.shared = corpus.resolve_shared_data()
        self.ledger = Ledger(work / "ledger.json")
        from remit.utils.integrations import default_device

        self.device = default_device()  # every stage: CUDA when visible, else CPU

    # ------------------------------------------------------------------ stages
    def pretrain(self) -> str:
        from remit.midtrain import stage as mt

        r = self.rec
        steps = r["pretrain"]["token_budget"] // (r["pretrain"]["optim"]["batch_size"] * r["seq_len"])
        cfg = _build(mt.PretrainConfig, {
            "out_dir": str(self.work / "pretrain"), "resume": True, "seed": 0,
            "model": {"tokenizer_vocab_size": r["tokenizer_vocab_size"], "fresh": r["model"]},
            "data": {"sources": [{"path": str(self.data / "pretrain.jsonl")}], "seq_len": r["seq_len"],
                     "cache_dir": str(self.work / "cache")},
            "optim": r["pretrain"]["optim"], "schedule": r["pretrain"]["schedule"],
            "token_budget": r["pretrain"]["token_budget"], "checkpoint_every": max(1, steps // 4),
            "logging": {"every": 10, "progress": False, "tensorboard": False}})
        return str(self.ledger.timed("pretrain", mt.run_pretrain, cfg))

    def midtrain(self, label: str, seed: int, pre: str, spec: dict[str, Any], ref: str | None) -> str:
        from remit.midtrain import stage as mt

        m = self.rec["midtrain"]
        steps = max(1, m["token_budget"] // (m["optim"]["batch_size"] * self.rec["seq_len"]))
        curve = label in m.get("curve_methods", [])
        every = max(1, steps // (m["curve_points"] + 1)) if curve else max(1, steps // 2)
        data: dict[str, Any] = {
            "out_dir": str(self.work / f"s{seed}" / f"mid-{label}"), "resume": True, "seed": seed,
            "model": {"path": pre}, "method": spec["method"],
            "data": {"sources": [{"path": str(self.data / "midtrain.jsonl"), "weight": m["mix"]["midtrain"]},
                                 {"path": str(self.data / "pretrain.jsonl"), "weight": m["mix"]["pretrain"]}],
                     "seq_len": self.rec["seq_len"], "cache_dir": str(self.work / "cache"),
                     "max_tokens": m["pool_factor"] * m["token_budget"]},  # same pool for every method
            "optim": m["optim"], "schedule": m["schedule"], "token_budget": m["token_budget"],
            "checkpoint_every": every, "keep_checkpoints": (m["curve_points"] + 2) if curve else 1,
            "logging": {"every": 2, "progress": False, "tensorboard": False}}
        if ref is not None:
            data["reference"] = {"path": ref}
        return str(self.ledger.timed(f"s{seed}/mid-{label}", mt.run, _build(mt.MidtrainConfig, data)))

    def posttrain(self, label: str, seed: int, model: str) -> dict[str, str]:
        from remit.posttrain import chain

        out = self.work / f"s{seed}" / f"post-{label}"
        data = json.loads(json.dumps(self.rec["posttrain"]))
        data.update({"model": model, "out": str(out), "data_dir": str(self.data), "seed": seed})  # device: auto
        cfg = _build(chain.PosttrainConfig, data)
        self.ledger.timed(f"s{seed}/post-{label}", chain.run, cfg)
        return {name: str(out / name) for name in cfg.stages}

    def evaluate(self, name: str, model: str, chat: bool) -> str:
        from remit.eval import run as ev

        e = self.rec["eval"]
        cfg = _build(ev.EvalConfig, {
            "model": model, "suite": e["suite"], "data_dir": str(self.shared), "limit": e["limit"],
            "max_gen_toks": e["max_gen_toks"], "batch_size": e["batch_size"], "chat": chat,
            "out_dir": str(self.work / "eval" / name), "code_workers": 1})
        return str(self.ledger.timed(f"eval/{name}", ev.run, cfg))

    def gold_bpb(self, name: str, mid_dir: str) -> None:
        from curve import checkpoint_curve

        out = self.work / "curves" / f"{name}.json"
        if out.is_file():
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        res = self.ledger.timed(f"curve/{name}", checkpoint_curve, mid_dir, str(self.data / "heldout_gold.jsonl"),
                                 self.device)
        out.write_text(json.dumps(res, indent=1))

    def final_bpb(self, models: dict[str, str]) -> None:
        from curve import model_bpb

        out = self.work / "curves" / "final_models.json"
        done = json.loads(out.read_text()) if out.is_file() else {}
        todo = {k: v for k, v in models.items() if k not in done}
        if todo:
            for k, v in todo.items():
                done[k] = model_bpb(v, str(self.data / "heldout_gold.jsonl"), self.device)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(done, indent=1))

    # ------------------------------------------------------------------ the whole run
    def run(self, seeds: list[int]) -> dict[str, Any]:
        pre = self.pretrain()
        self.evaluate("pre-annealing", pre, chat=False)
        models: dict[str, str] = {"pre-annealing": pre}
        specs = self.rec["midtrain"]["methods"]
        # method-major order (each method over all seeds) so that a partial run already holds complete
        # seed sets for the first methods: vanilla, remit-r1, remit-r2, then the baselines
        first = [k for k in ("vanilla", "remit-r1", "remit-r2") if k in specs]
        order = first + [k for k in specs if k not in first]
        refs: dict[int, dict[str, str]] = {s: {} for s in seeds}
        for label in order:
            spec = specs[label]
            for seed in seeds:
                if spec.get("reference") and spec["reference"] not in refs[seed]:
                    say(f"SKIP {label} seed {seed}: its reference ({spec['reference']}) was not produced")
                    continue
                ref = refs[seed][spec["reference"]] if spec.get("reference") else None
                try:
                    mid = self.midtrain(label, seed, pre, spec, ref)
                    post = self.posttrain(label, seed, mid)
                except Exception as e:  # one failed method must not stop the others; recorded, not hidden
                    say(f"FAILED {label} seed {seed}: {type(e).__name__}: {e}")
                    self.ledger.data.setdefault("failed", {})[f"s{seed}/{label}"] = f"{type(e).__name__}: {e}"
                    self.ledger.path.write_text(json.dumps(self.ledger.data, indent=1))
                    continue
                if label == "vanilla":
                    refs[seed].update(r0=post["grpo"], sft0=post["sft"])
                if label == "remit-r1":
                    refs[seed]["r1"] = post["grpo"]
                models[f"{label}/s{seed}"] = mid
                models[f"{label}+post/s{seed}"] = post["grpo"]
                self.evaluate(f"{label}-s{seed}", mid, chat=False)
                self.evaluate(f"{label}+post-s{seed}", post["grpo"], chat=True)
                if label in self.rec["midtrain"].get("curve_methods", []):
                    self.gold_bpb(f"{label}-s{seed}", mid)
                self.final_bpb(models)
        return models


def prepare(work: Path, pretrain_chars: int) -> dict[str, Any]:
    """``remit prepare`` (configs/data/quality.yaml) into ``<work>/data``; its statistics also as prep.json."""
    from remit.config import load_config
    from remit.manifest import read_manifest

    cfg = load_config(corpus.CorpusConfig, REPO / "configs/data/quality.yaml",
                      [f"out_dir={work / 'data'}", f"pretrain_chars={pretrain_chars}"])
    info = read_manifest(corpus.run(cfg))
    (work / "data" / "prep.json").write_text(json.dumps(info, indent=1))
    return info


def git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description="remit quality experiment (issue #7)")
    ap.add_argument("--config", default=str(HERE / "config.yaml"))
    ap.add_argument("--work", default=str(REPO / "runs" / "quality"))
    ap.add_argument("--scale", type=float, default=None, help="overrides the config's scale")
    ap.add_argument("--seeds", type=int, nargs="*", default=None, help="overrides the config's seeds")
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "quality"))
    ap.add_argument("--analyze-only", action="store_true")
    ap.add_argument("--no-analyze", action="store_true")
    a = ap.parse_args()
    rec = yaml.safe_load(Path(a.config).read_text())
    scale = a.scale if a.scale is not None else float(rec.get("scale", 1.0))
    seeds = a.seeds if a.seeds is not None else list(rec["seeds"])
    rec = scaled(rec, scale)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    meta_path = work / "run_meta.json"
    from remit.errors import RemitError

    try:
        if not a.analyze_only:
            meta = {"command": " ".join([os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO))
                                         else sys.executable] + [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
                    "git_head": git_head(), "scale": scale, "seeds": seeds, "recipe": rec,
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            old = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            meta["first_started"] = old.get("first_started", meta["started"])
            meta_path.write_text(json.dumps(meta, indent=1))
            say(f"scale={scale} seeds={seeds} work={work} shared data={corpus.resolve_shared_data()}")
            info = prepare(work, rec["pretrain_chars"])
            say(f"data: pretrain {info['pretrain']['chars'] / 1e6:.1f}M chars, midtrain {info['midtrain']['chars'] / 1e6:.1f}M "
                f"chars; decontamination dropped {info['decontamination']['dropped']}")
            Experiment(rec, work).run(seeds)
            meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            meta["wall_s_this_invocation"] = round(time.time() - T0, 1)
            meta_path.write_text(json.dumps(meta, indent=1))
        if not a.no_analyze:
            from analyze import analyze

            say(f"analysis -> {analyze(work, Path(a.results))}")
    except RemitError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
