"""Read an experiment's finished seeds and test its contrasts at the seed level.

For each contrast and seed: the treatment's primary metric minus the baseline's (points for accuracies;
for lower-is-better metrics the sign is flipped, so a positive number is always a gain), from the two arms'
``remit eval`` results of that seed. The headline is the paired t interval over seeds
(:func:`remit.eval.stats.seed_t`, with the contrast's alternative); the crossed (seed x example) bootstrap is
shown beside it. Pre-registered hypotheses are tested in order (fixed sequence at ``alpha``, a hypothesis is
tested only if the previous one was rejected); exploratory contrasts get Holm-adjusted p-values. Each
contrast says what the seeds at hand can detect (the minimum detectable effect at ``power``) and, with a
``margin``, whether the interval refutes an effect of practical size (TOST).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from remit.errors import DataError
from remit.eval import stats
from remit.eval.results import load_results
from remit.experiment import curves, gates
from remit.experiment.config import Contrast, ExperimentConfig
from remit.report.build import load_run
from remit.report.tables import lower_is_better, scale
from remit.utils.io import atomic_write_json, atomic_write_text


def _arm_values(root: Path, seeds: list[int], labels: set[str], metric: str) -> dict[str, dict[int, dict]]:
    """{label: {seed: {"value", "per_example"}}} of one suite/task/metric, through the run-folder reader."""
    suite, task, name = metric.split("/")
    out: dict[str, dict[int, dict]] = {}
    for s in seeds:
        run_dir = root / f"seed{s}"
        if not run_dir.is_dir():
            raise DataError(f"{run_dir}: seed {s} has not run (run the experiment without analyze_only)")
        run = load_run(run_dir)
        for label in sorted(labels):  # a stable order for the tables
            path = (run.evals.get(label) or {}).get(suite)
            if path is None:
                raise DataError(f"{run_dir}: no '{suite}' evaluation of arm '{label}' (is seed {s} finished?)")
            res = load_results(path)
            cell = (res["tasks"].get(task) or {}).get(name)
            if cell is None:
                have = {t: sorted(m) for t, m in res["tasks"].items()}
                raise DataError(f"{res['_path']}: no {task}/{name} (metric={metric}); it has {have}")
            per = (res["per_example"].get(task) or {}).get(name) or []
            out.setdefault(label, {})[s] = {"value": float(cell["value"]), "per_example": [float(v) for v in per]}
    return out


def _contrast(c: Contrast, vals: dict, seeds: list[int], metric: str, cfg: ExperimentConfig) -> dict[str, Any]:
    name = metric.split("/")[2]
    t, b = vals[c.treatment], vals[c.baseline]
    k = scale(name, [v["value"] for arm in (t, b) for v in arm.values()])
    sign = -1.0 if lower_is_better(name) else 1.0
    per_seed = [sign * k * (t[s]["value"] - b[s]["value"]) for s in seeds]
    est = stats.seed_t(per_seed, confidence=cfg.confidence, alternative=c.alternative)
    two = stats.seed_t(per_seed, confidence=cfg.confidence)
    row: dict[str, Any] = {
        "name": c.label,
        "contrast": f"{c.treatment} - {c.baseline}" if sign > 0 else f"{c.baseline} - {c.treatment} (lower is better)", "metric": metric, "alternative": c.alternative,
        "unit": "points" if k == 100.0 else "raw", "gain_sign": sign, "seeds": seeds, "per_seed": per_seed,
        "mean": est.mean, "delta": est.mean, "ci": [two.lo, two.hi], "bound": est.lo if c.alternative == "greater" else est.hi,
        "p": est.p, "sd": est.sd, "test": "paired t over seeds (n - 1 df)",
        "mde": stats.mde(len(seeds), est.sd, alpha=cfg.alpha, power=cfg.power, alternative=c.alternative)
        if est.sd else float("nan")}
    lens = {len(v[s]["per_example"]) for v in (t, b) for s in seeds}
    if len(seeds) >= 2 and len(lens) == 1 and 0 not in lens:
        d = np.array([np.asarray(t[s]["per_example"]) - np.asarray(b[s]["per_example"]) for s in seeds]) * sign * k
        cb = stats.crossed_bootstrap(d, n_boot=cfg.n_boot, confidence=cfg.confidence, seed=0)
        row["ci_crossed_bootstrap"] = [cb.lo, cb.hi]
    if c.margin > 0 and len(seeds) >= 2:
        row["tost"] = stats.tost(per_seed, c.margin, alpha=cfg.alpha)
    return row


def _verdict(row: dict, alpha: float, power: float = 0.8) -> str:
    if row["p"] is None:
        return "no test (fewer than 2 seeds)"
    if not row.get("tested", True):
        return "not tested (an earlier hypothesis of the fixed sequence was not rejected)"
    if row["p"] < alpha:
        return "supported" if row["alternative"] != "two-sided" else "different"
    if row.get("tost", {}).get("equivalent"):
        return f"refuted at practical size (the {int(row['tost']['confidence'] * 100)}% interval lies within +-{row['tost']['margin']:g})"
    mde = row.get("mde")
    size = f"; the seeds detect (power {int(100 * power)}%) only effects of about {mde:.3g} {row['unit']}" if mde and \
        not math.isnan(mde) else ""
    return "inconclusive" + size


def analyze(cfg: ExperimentConfig, *, command: str = "") -> Path:
    root = Path(cfg.runs_dir) / cfg.name
    seeds = list(cfg.seeds)
    groups = {"hypotheses": cfg.hypotheses, "exploratory": cfg.exploratory}
    by_metric: dict[str, set[str]] = {}
    first = root / f"seed{seeds[0]}"
    if first.is_dir():  # every arm's primary metric, named by a contrast or not
        suite = cfg.metric.split("/")[0]
        by_metric[cfg.metric] = {label for label, by in load_run(first).evals.items() if suite in by}
    for c in [*cfg.hypotheses, *cfg.exploratory]:
        by_metric.setdefault(c.metric or cfg.metric, set()).update({c.treatment, c.baseline})
    values = {m: _arm_values(root, seeds, labels, m) for m, labels in by_metric.items()}
    summary: dict[str, Any] = {"name": cfg.name, "seeds": seeds, "metric": cfg.metric, "alpha": cfg.alpha,
                               "confidence": cfg.confidence, "command": command,
                               "min_sign_test_p": stats.min_sign_test_p(len(seeds)), "arms": {}}
    for m, vals in values.items():
        for label, by_seed in vals.items():
            summary["arms"].setdefault(label, {})[m] = {
                "per_seed": [by_seed[s]["value"] for s in seeds], "mean": float(np.mean([by_seed[s]["value"] for s in seeds])),
                "per_example": {str(s): by_seed[s]["per_example"] for s in seeds}}
    for key, items in groups.items():
        rows = [_contrast(c, values[c.metric or cfg.metric], seeds, c.metric or cfg.metric, cfg) for c in items]
        if key == "hypotheses":
            for r, f in zip(rows, stats.fixed_sequence([r["p"] for r in rows], alpha=cfg.alpha)):
                r["tested"], r["rejected"] = f["tested"], f["rejected"]
        elif rows:
            for r, h in zip(rows, stats.holm([r["p"] if r["p"] is not None else 1.0 for r in rows], alpha=cfg.alpha)):
                r["p_holm"], r["rejected"] = h["p_holm"], h["rejected"]
        for r in rows:
            r["verdict"] = _verdict(r, cfg.alpha, cfg.power) if key == "hypotheses" else \
                ("no test (fewer than 2 seeds)" if r["p"] is None else
                 "exploratory: " + ("nominally p < alpha" if r["p"] < cfg.alpha else "not significant"))
        summary[key] = {r["name"]: r for r in rows}
    if cfg.curves:
        summary["curves"] = curves.read_curves(cfg, root, seeds)
        summary["efficiency"] = {c.label: curves.efficiency(c, summary["curves"], seeds, c.metric or cfg.curve_metrics[0],
                                                            cfg.confidence) for c in cfg.curves.efficiency}
    if cfg.gates is not None:
        summary["gates"], summary["checks"] = gates.evaluate(cfg.gates, root, seeds, cfg.metric)
    atomic_write_json(root / "summary.json", summary)
    atomic_write_text(root / "results.md", to_markdown(summary))
    _figure(summary, root / "contrasts.png")
    curves.figure(summary, root / "curves.png")
    return root / "results.md"


def _fmt(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "-" if v is None or math.isnan(v) else ("+inf" if v > 0 else "-inf")
    return f"{v:+.2f}" if unit == "points" else f"{v:+.4f}"


def to_markdown(s: dict) -> str:
    c = int(s["confidence"] * 100)
    lines = [f"# Experiment {s['name']}: {len(s['seeds'])} seeds ({', '.join(map(str, s['seeds']))})", "",
             f"Primary metric: `{s['metric']}`. Unit of analysis: the training run (seed); each contrast is one paired "
             f"difference per seed (treatment - baseline, a positive number is a gain), tested with a paired t over "
             f"seeds; {c}% intervals are two-sided t intervals; the crossed (seed x example) bootstrap is shown as a "
             f"secondary description. With {len(s['seeds'])} seed(s) no sign or Wilcoxon test can reach "
             f"p < {s['min_sign_test_p']:.3g}.", ""]
    if s.get("command"):
        lines += [f"Command: `{s['command']}`", ""]
    lines += ["## Arms (primary metric, per seed)", "", "| arm | mean | per seed |", "|---|---|---|"]
    for label, by_m in s["arms"].items():
        v = by_m.get(s["metric"]) or next(iter(by_m.values()))
        lines.append(f"| {label} | {v['mean']:.4f} | {', '.join(f'{x:.4f}' for x in v['per_seed'])} |")
    for key, title in (("hypotheses", "Pre-registered hypotheses (fixed sequence, alpha "
                        f"{s['alpha']}, each tested only if the previous was rejected)"),
                       ("exploratory", "Exploratory contrasts (Holm-adjusted; not confirmatory)")):
        rows = s.get(key) or {}
        if not rows:
            continue
        lines += ["", f"## {title}", "",
                  f"| contrast | alternative | per seed | mean | {c}% t CI | p | crossed bootstrap CI | MDE | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows.values():
            u = r["unit"]
            per = ", ".join(_fmt(v, u) for v in r["per_seed"])
            cb = r.get("ci_crossed_bootstrap")
            p = "-" if r["p"] is None else f"{r['p']:.3g}" + (f" (Holm {r['p_holm']:.3g})" if "p_holm" in r else "")
            mde = "-" if r["mde"] is None or math.isnan(r["mde"]) else f"{r['mde']:.3g}"
            lines.append(f"| {r['name']}: {r['contrast']} ({u}) | {r['alternative']} | {per} | {_fmt(r['mean'], u)} | "
                         f"[{_fmt(r['ci'][0], u)}, {_fmt(r['ci'][1], u)}] | {p} | "
                         f"{'-' if not cb else f'[{_fmt(cb[0], u)}, {_fmt(cb[1], u)}]'} | {mde} | {r['verdict']} |")
    lines += curves.to_markdown(s)
    lines += gates.to_markdown(s)
    return "\n".join(lines) + "\n"


def _figure(s: dict, path: Path) -> None:
    rows = [*(s.get("hypotheses") or {}).values(), *(s.get("exploratory") or {}).values()]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * len(rows)))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        lo, hi = r["ci"]
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.plot([lo, hi], [y, y], color="tab:blue", lw=2)
        ax.scatter(r["per_seed"], [y] * len(r["per_seed"]), color="gray", s=12, zorder=3)
        ax.scatter([r["mean"]], [y], color="tab:blue", s=40, zorder=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["name"] for r in reversed(rows)])
    ax.set_xlabel("treatment - baseline per seed (gain; dots: seeds, bar: t interval)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
