"""One more mid-training arm over the flywheel experiment's seeds, compared with ReMiT-r1 and vanilla.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flywheel/variant.py perdoc method.per_document=true
    .venv/bin/python benchmarks/flywheel/variant.py tau3 method.temperature=3 --seeds 0 1 --work runs/flywheel-exp
    ... variant.py chat-sft 'data.sources=[{path: {work}/chatmix/midtrain.jsonl}]' \
        'reference.path={work}/seed{seed}/post-vanilla/sft' --against chat-remit chat-vanilla

``{seed}`` and ``{work}`` in an override are replaced per seed.

Per seed, the arm starts from that seed's ``midtrain-remit-r1`` config (same checkpoint P, reference R0,
data order and schedule), applies the overrides and trains ``midtrain-<name>`` in the experiment's work
folder (``remit midtrain``, resumable). Its base model is scored like every other arm (``gold_bpb.py``:
greedy accuracy on the 500 held-out tasks and gold bits per byte, one pass), then compared with remit-r1
and vanilla, paired over (seed, task) with the experiment's bootstrap (``analyze.paired``). Also reported:
the arm's weight statistics at its first and last logged step next to remit-r1's. Writes
``benchmarks/results/flywheel/variant-<name>.{md,json}``. Needs a finished ``run.py`` work folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from analyze import paired  # noqa: E402
from curve import per_arm  # noqa: E402
from gold_bpb import _score_arm  # noqa: E402
from run import remit, say  # noqa: E402  (benchmarks/flywheel/run.py: HERE is first on the path)

STATS = ("w_mean", "w_std", "w_frac_hi", "w_frac_lo")


def train(work: Path, seed: int, name: str, overrides: list[str]) -> None:
    base = work / f"seed{seed}" / "midtrain-remit-r1"
    out = work / f"seed{seed}" / f"midtrain-{name}"
    overrides = [o.replace("{seed}", str(seed)).replace("{work}", str(work)) for o in overrides]
    remit(["midtrain", "--config", str(base / "config.yaml"), f"out_dir={out}", "resume=true",
           "logging.progress=false", *overrides], work / "logs" / f"variant-{name}-seed{seed}.log")


def weights(work: Path, seed: int, label: str) -> dict:
    rows = [json.loads(x) for x in (work / f"seed{seed}" / f"midtrain-{label}" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "w_mean" in r]
    return {"first": {k: rows[0].get(k) for k in STATS}, "last": {k: rows[-1].get(k) for k in STATS}} if rows else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="the arm's label (midtrain-<name>)")
    ap.add_argument("overrides", nargs="+", help="key=value overrides of the remit-r1 mid-training config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--work", default=str(REPO / "runs" / "flywheel-exp"))
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "flywheel"))
    ap.add_argument("--against", nargs="+", default=["remit-r1", "vanilla"], help="arms to compare with")
    ap.add_argument("--no-train", action="store_true", help="only score and compare (the arms are trained)")
    a = ap.parse_args()
    work = Path(a.work).resolve()
    (work / "logs").mkdir(exist_ok=True)
    for s in [] if a.no_train else a.seeds:
        train(work, s, a.name, a.overrides)
    say("scoring")
    gold = json.loads(per_arm(work, a.seeds, [a.name, *a.against], work / "gold_bpb.json", _score_arm).read_text())

    def values(label: str, key: str) -> list[list[float]]:
        g = [gold[f"seed{s}/{label}"] for s in a.seeds]
        return [[float(x) for x in e["correct"]] if key == "acc" else [b / n for b, n in zip(e["bits"], e["bytes"])]
                for e in g]

    out = {"arm": a.name, "overrides": a.overrides, "seeds": a.seeds,
           "acc": {lab: sum(map(sum, values(lab, "acc"))) / sum(map(len, values(lab, "acc")))
                   for lab in (a.name, *a.against)},
           "vs": {b: {"acc": paired(values(a.name, "acc"), values(b, "acc")),
                      "bpb": paired(values(a.name, "bpb"), values(b, "bpb"))} for b in a.against},
           "weights": {lab: {f"seed{s}": weights(work, s, lab) for s in a.seeds} for lab in (a.name, *a.against)},
           "command": f"OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flywheel/variant.py {a.name} "
                      + " ".join(f"'{o}'" if " " in o else o for o in a.overrides)
                      + f" --seeds {' '.join(map(str, a.seeds))} --against {' '.join(a.against)}"}
    res = Path(a.results)
    res.mkdir(parents=True, exist_ok=True)
    (res / f"variant-{a.name}.json").write_text(json.dumps(out, indent=1) + "\n")
    (res / f"variant-{a.name}.md").write_text(markdown(out))
    say(f"results: {res / f'variant-{a.name}.md'}")


def _ci(c: dict, scale: float, digits: int) -> str:
    lo, hi = c["ci"]
    sig = " (significant)" if lo > 0 or hi < 0 else " (not significant)"
    return f"{c['delta'] * scale:+.{digits}f} [{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}]{sig}"


def markdown(o: dict) -> str:
    name = o["arm"]
    lines = [f"# Flywheel experiment, extra arm `{name}`: ReMiT-r1 with {' '.join(o['overrides'])}", "",
             f"Command: `{o['command']}`. Seeds {o['seeds']}, 500 held-out tasks each; the same checkpoint P, "
             "reference R0, data order and schedule as remit-r1; deltas paired over (seed, task), 95% bootstrap CI.",
             "", "| arm | base accuracy (mean over seeds) |", "|---|---|"]
    lines += [f"| {k} | {v * 100:.2f}% |" for k, v in o["acc"].items()]
    lines += ["", f"| {name} vs | accuracy (points) | gold bits per byte (negative = better) |", "|---|---|---|"]
    lines += [f"| {b} | {_ci(v['acc'], 100, 2)} | {_ci(v['bpb'], 1, 4)} |" for b, v in o["vs"].items()]
    lines += ["", "Token weights (mean over seeds of the first / last logged step):", "",
              "| arm | w_mean | w_std | share at 1 + eps | share at 1 - eps |", "|---|---|---|---|---|"]
    for lab, per in o["weights"].items():
        cells = []
        for k in STATS:
            f = [p["first"][k] for p in per.values() if p]
            la = [p["last"][k] for p in per.values() if p]
            cells.append(f"{sum(f) / len(f):.3f} / {sum(la) / len(la):.3f}" if f else "n/a")
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
