"""The flywheel experiment of issue #11: in the chain world (where GRPO works at CPU scale), does ReMiT help?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flywheel/run.py                 # 5 seeds, 2 jobs at once
    .venv/bin/python benchmarks/flywheel/run.py --seeds 0 1 --jobs 1 --work runs/fw-smoke
    .venv/bin/python benchmarks/flywheel/run.py --analyze-only                     # tables from a work folder

Pipeline (everything through `remit flywheel`, the embedded default plus the overrides in ARMS below):
  1. one shared pre-annealing checkpoint P: the default world (seed 0) and its pre-training;
  2. per seed s (mid-training data order, post-training sampling): `remit flywheel seed=s world.seed=0
     start_checkpoint=P rounds=2 baselines=[sft_guided, kd, rho1] posttrain_baselines=true`, that is
     vanilla B0 -> R0 (SFT S0), ReMiT-r1 (ref R0), ReMiT-r2 (ref R1), SFT-guided (ref S0), KD and RHO-1 (ref R0),
     every arm post-trained the same way, every model evaluated on the 500 held-out tasks (world suite);
  3. the sample-efficiency curves (curve.py) on the kept mid-training checkpoints of vanilla and ReMiT-r1,
     and every arm's gold bits per byte from one scorer (gold_bpb.py);
  4. analyze.py: benchmarks/results/flywheel/{results.md, summary.json, *.png}.

Resumable: every stage reuses a finished output with the same config; re-run the same command to continue.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
T0 = time.time()

# Overrides of the embedded default shared by every seed's flywheel (the arms of the issue).
ARMS = ["rounds=2", "baselines=[sft_guided, kd, rho1]", "posttrain_baselines=true", "report=false",
        "midtrain.checkpoint_every=25", "midtrain.keep_checkpoints=20"]


def say(msg: str) -> None:
    print(f"[flywheel-exp {time.time() - T0:6.0f}s] {msg}", flush=True)


def remit(args: list[str], log: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    exe = Path(sys.executable).with_name("remit")
    cmd = [str(exe) if exe.is_file() else "remit", *args]
    t = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if rc != 0:
        raise SystemExit(f"failed (rc={rc}): {' '.join(cmd)}; see {log}")
    say(f"done {' '.join(a for a in args if a.startswith('name='))} in {time.time() - t:.0f} s")


def shared_checkpoint(work: Path, extra: list[str]) -> Path:
    """P: world + pre-training of the default, once (a flywheel with no mid-training rounds would do more)."""
    from remit.config import load_config
    from remit.flywheel.run import FlywheelConfig, plan

    cfg = load_config(FlywheelConfig, None, [f"runs_dir={work}", "name=shared", "seed=0", *extra])
    stages = plan(cfg)
    for st in stages[:2]:  # world, pretrain
        assert st.kind in ("world", "pretrain"), st.kind
        say(f"shared: {st.id}")
        st.runner(st.config)
    return Path(stages[1].config.out_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--jobs", type=int, default=2, help="seeds run at once (one core each)")
    ap.add_argument("--work", default="runs/flywheel-exp")
    ap.add_argument("--results", default=str(REPO / "benchmarks/results/flywheel"))
    ap.add_argument("--analyze-only", action="store_true")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides of the flywheel config")
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not a.analyze_only:
        pre = shared_checkpoint(work, a.overrides)
        log_dir = work / "logs"
        log_dir.mkdir(exist_ok=True)

        def one(seed: int) -> None:
            remit(["flywheel", f"runs_dir={work}", f"name=seed{seed}", f"seed={seed}", "world.seed=0",
                   f"start_checkpoint={pre}", *ARMS, *a.overrides], log_dir / f"seed{seed}.log")

        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            for f in [pool.submit(one, s) for s in a.seeds]:
                f.result()
        say("curves")
        sys.path.insert(0, str(HERE))
        from curve import curves
        from gold_bpb import gold_bpb

        curves(work, a.seeds)
        say("gold bpb")
        gold_bpb(work, a.seeds)
    sys.path.insert(0, str(HERE))
    from analyze import analyze

    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flywheel/run.py " + " ".join(
        [f"--seeds {' '.join(map(str, a.seeds))}", *a.overrides])
    out = analyze(work, a.seeds, Path(a.results), command=cmd)
    say(f"results: {out}")


if __name__ == "__main__":
    main()
