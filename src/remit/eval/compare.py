"""Compare eval runs side by side: deltas vs the first run with paired bootstrap 95% CIs.

    remit compare runs/eval/base-paper10 runs/eval/remit-paper10 [n_boot=2000] [out=DIR]

Each run is a folder holding ``results.json`` (or the file itself). For every task/metric of the
first run, the other runs' deltas get a percentile CI from resampling examples *paired by index*
(the same documents in the same order, which ``remit eval`` guarantees for the same data and
limit); a difference is marked ``*`` when its CI excludes 0. The unit here is the example, so the interval
says how precisely THIS run was measured, not whether another seed would agree: for a claim across
training runs use the per-seed differences (``remit stats``, :mod:`remit.eval.stats`).
``compare(paths)`` returns the same table as a data structure (used by the report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_range
from remit.errors import ConfigError
from remit.eval import stats
from remit.eval.results import LOWER_IS_BETTER, load_results
from remit.utils.io import atomic_write_json, atomic_write_text


@dataclass
class CompareConfig:
    runs: list[str] = field(default_factory=list)  # eval output folders (or results.json files); first = baseline
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    out: str = ""  # optional folder for compare.json / compare.md (default: print only)

    def validate(self) -> None:
        if len(self.runs) < 2:
            raise ConfigError(f"runs: give at least two eval runs to compare (got {len(self.runs)}), "
                              "e.g. remit compare runs/eval/a runs/eval/b")
        check_range("n_boot", self.n_boot, 100)
        check_range("confidence", self.confidence, 0.0, 1.0, lo_open=True, hi_open=True)


def compare(runs: list[str | Path], *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """``{"runs": [paths], "rows": [{"task", "metric", "values", "deltas", "ci", "significant", "n",
    "lower_is_better"}]}``; index 0 of deltas/ci/significant is the baseline (None)."""
    results = [load_results(r) for r in runs]
    base = results[0]
    rows = []
    for task, metrics in base["tasks"].items():
        for metric, stat in metrics.items():
            row: dict[str, Any] = {"task": task, "metric": metric, "values": [stat["value"]], "deltas": [None],
                                   "ci": [None], "significant": [None], "n": [stat["n"]],
                                   "lower_is_better": metric in LOWER_IS_BETTER}
            a = base["per_example"].get(task, {}).get(metric, [])
            for other in results[1:]:
                s = other["tasks"].get(task, {}).get(metric)
                b = other["per_example"].get(task, {}).get(metric, [])
                if s is None:
                    for k in ("values", "deltas", "ci", "significant", "n"):
                        row[k].append(None)
                    continue
                est, _ = stats.paired_bootstrap(a, b, n_boot=n_boot, confidence=confidence, seed=seed)
                delta, lo, hi, n = est.mean, est.lo, est.hi, est.n
                row["values"].append(s["value"])
                row["deltas"].append(s["value"] - stat["value"] if len(a) == len(b) else delta)
                row["ci"].append((lo, hi))
                row["significant"].append(bool(n > 0 and (lo > 0 or hi < 0)))
                row["n"].append(n)
            rows.append(row)
    return {"runs": [r["_path"] for r in results], "models": [r.get("model") for r in results],
            "confidence": confidence, "n_boot": n_boot, "rows": rows}


def to_markdown(cmp: dict[str, Any]) -> str:
    k = len(cmp["runs"])
    head = ["task", "metric", "run 0"] + [f"run {i} (delta, {int(cmp['confidence'] * 100)}% CI)" for i in range(1, k)]
    lines = [f"run {i}: {p}" for i, p in enumerate(cmp["runs"])] + ["",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in cmp["rows"]:
        cells = [r["task"], r["metric"] + (" (lower better)" if r["lower_is_better"] else ""), f"{r['values'][0]:.4f}"]
        for i in range(1, k):
            if r["values"][i] is None:
                cells.append("-")
                continue
            lo, hi = r["ci"][i]
            star = " *" if r["significant"][i] else ""
            cells.append(f"{r['values'][i]:.4f} ({r['deltas'][i]:+.4f}, [{lo:+.4f}, {hi:+.4f}]){star}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\n`*`: the paired bootstrap CI of the delta excludes 0 (examples paired by index). It describes this "
                 "run only; across training runs (seeds) use `remit stats` on the per-seed differences.")
    return "\n".join(lines) + "\n"


def run(cfg: CompareConfig) -> Path:
    cmp = compare(cfg.runs, n_boot=cfg.n_boot, confidence=cfg.confidence, seed=cfg.seed)
    text = to_markdown(cmp)
    print(text)
    if not cfg.out:
        return Path(cmp["runs"][0]).parent
    out = Path(cfg.out)
    atomic_write_json(out / "compare.json", cmp)
    atomic_write_text(out / "compare.md", text)
    return out
