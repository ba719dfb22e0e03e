"""Curves of an experiment: a metric at fixed token counts along mid-training, and sample efficiency.

The points are the flywheel's curve stages (``curves`` of the experiment config): token 0 (the start),
each weights-only snapshot scored by ``remit eval`` and the arm's end, read through the run-folder reader
(:func:`remit.report.build.load_run`, its ``curves``). Per seed and arm: ``[[tokens, value], ...]``.

Sample efficiency (``curves.efficiency``): the tokens the treatment needs to reach the baseline's final
value, per seed, by linear interpolation between the two grid points that bracket the crossing (the bracket
is kept beside it: the interpolation is a reading of the grid, not a measurement between its points). The
seed-level reading is a t interval over seeds of that count as a fraction of the baseline's tokens; it
exists only when every seed reaches the value, otherwise the result says how many seeds did not (the grid
cannot resolve what the treatment would need past its own budget).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from remit.errors import DataError
from remit.eval import stats
from remit.eval.results import load_results
from remit.experiment.config import Contrast, ExperimentConfig
from remit.report.build import load_run
from remit.report.tables import lower_is_better

__all__ = ["read_curves", "efficiency", "to_markdown", "figure"]


def _value(path: Path, metric: str) -> float:
    _, task, name = metric.split("/")
    res = load_results(path)
    cell = (res["tasks"].get(task) or {}).get(name)
    if cell is None:
        raise DataError(f"{res['_path']}: no {task}/{name} (curve metric {metric})")
    return float(cell["value"])


def read_curves(cfg: ExperimentConfig, root: Path, seeds: list[int]) -> dict[str, dict[str, dict[str, list]]]:
    """{metric: {arm: {seed: [[tokens, value], ...]}}} of every curve arm and metric."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for s in seeds:
        run_dir = root / f"seed{s}"
        run = load_run(run_dir)
        for arm in cfg.curves.arms:
            points = run.curves.get(arm)
            if not points:
                raise DataError(f"{run_dir}: no curve of arm '{arm}' (is seed {s} finished with curves.arms?)")
            for metric in cfg.curve_metrics:
                suite = metric.split("/")[0]
                row = []
                for tokens in sorted(points):
                    if suite not in points[tokens]:
                        raise DataError(f"{run_dir}: the curve of '{arm}' has no '{suite}' evaluation")
                    row.append([tokens, _value(points[tokens][suite], metric)])
                out.setdefault(metric, {}).setdefault(arm, {})[str(s)] = row
    return out


def crossing(points: list[list[float]], target: float, sign: float) -> dict[str, Any]:
    """Where a curve first reaches ``target`` (``sign`` = -1 for lower-is-better): the interpolated token
    count and the grid bracket, or ``reached: False``."""
    prev = None
    for t, v in points:
        if sign * v >= sign * target:
            if prev is None or sign * prev[1] >= sign * target:
                return {"reached": True, "tokens": float(t), "bracket": [float(t), float(t)]}
            (t0, v0) = prev
            frac = (target - v0) / (v - v0) if v != v0 else 1.0
            return {"reached": True, "tokens": float(t0 + frac * (t - t0)), "bracket": [float(t0), float(t)]}
        prev = (t, v)
    return {"reached": False, "tokens": None, "bracket": [float(points[-1][0]), None] if points else [None, None]}


def efficiency(c: Contrast, curves: dict, seeds: list[int], metric: str, confidence: float) -> dict[str, Any]:
    """Tokens the treatment needs to reach the baseline's final value, per seed and at the seed level."""
    sign = -1.0 if lower_is_better(metric.split("/")[2]) else 1.0
    t_curves, b_curves = curves[metric][c.treatment], curves[metric][c.baseline]
    per_seed = []
    for s in seeds:
        b, t = b_curves[str(s)], t_curves[str(s)]
        target, budget = b[-1][1], b[-1][0]
        x = crossing(t, target, sign)
        grid = max((t[i + 1][0] - t[i][0] for i in range(len(t) - 1)), default=0)
        per_seed.append({"seed": s, "target": target, "baseline_tokens": budget, **x,
                         "fraction": None if x["tokens"] is None else x["tokens"] / budget,
                         "grid_step_fraction": grid / budget if budget else None})
    row: dict[str, Any] = {"name": c.label, "treatment": c.treatment, "baseline": c.baseline, "metric": metric,
                           "per_seed": per_seed}
    missing = [p["seed"] for p in per_seed if not p["reached"]]
    if missing:
        row["reading"] = (f"{len(missing)} of {len(seeds)} seed(s) ({', '.join(map(str, missing))}) never reach the "
                          f"baseline's final value within the treatment's budget: the grid cannot resolve the "
                          f"tokens needed, so no seed-level interval")
        return row
    fr = [p["fraction"] for p in per_seed]
    est = stats.seed_t(fr, confidence=confidence)
    row.update({"fraction_mean": est.mean, "fraction_ci": [est.lo, est.hi], "n": est.n})
    step = max(p["grid_step_fraction"] or 0 for p in per_seed)
    ci = "" if math.isnan(est.lo) else f", {int(confidence * 100)}% t interval over seeds [{est.lo:.3f}, {est.hi:.3f}]"
    row["reading"] = (f"the treatment reaches the baseline's final value after {est.mean:.3f} of the baseline's "
                      f"tokens on average{ci}; the grid step is {step:.3f} of the budget, so differences below it "
                      f"are interpolation between grid points, not measured")
    return row


def to_markdown(s: dict) -> list[str]:
    lines: list[str] = []
    for metric, arms in (s.get("curves") or {}).items():
        tokens = sorted({p[0] for by_seed in arms.values() for pts in by_seed.values() for p in pts})
        lines += ["", f"## Curve: `{metric}` at fixed token counts (mean over seeds)", "",
                  "| tokens | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
        for t in tokens:
            cells = []
            for by_seed in arms.values():
                vals = [v for pts in by_seed.values() for (tt, v) in pts if tt == t]
                cells.append(f"{sum(vals) / len(vals):.4f}" if vals else "-")
            lines.append(f"| {t:,} | " + " | ".join(cells) + " |")
    rows = s.get("efficiency") or {}
    if rows:
        lines += ["", "## Sample efficiency: tokens the treatment needs to reach the baseline's final value", "",
                  "| contrast | metric | per seed (fraction of the baseline's tokens; grid bracket) | reading |",
                  "|---|---|---|---|"]
        for r in rows.values():
            per = "; ".join(
                f"seed {p['seed']}: {p['fraction']:.3f} [{p['bracket'][0]:,.0f}, {p['bracket'][1]:,.0f} tokens]"
                if p["reached"] else f"seed {p['seed']}: not reached" for p in r["per_seed"])
            lines.append(f"| {r['name']}: {r['treatment']} vs {r['baseline']} | {r['metric']} | {per} | {r['reading']} |")
    return lines


def figure(s: dict, path: Path) -> None:
    curves = s.get("curves") or {}
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4), squeeze=False)
    for ax, (metric, arms) in zip(axes[0], curves.items()):
        for i, (arm, by_seed) in enumerate(arms.items()):
            color = f"C{i}"
            for pts in by_seed.values():
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, alpha=0.3, lw=0.8)
            tokens = sorted({p[0] for pts in by_seed.values() for p in pts})
            mean = [sum(v for pts in by_seed.values() for (t, v) in pts if t == x) /
                    max(1, sum(1 for pts in by_seed.values() for (t, _) in pts if t == x)) for x in tokens]
            ax.plot(tokens, mean, color=color, lw=2, marker="o", ms=3, label=arm)
        ax.set_xlabel("mid-training tokens")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
