"""Read an experiment's finished seeds and test its contrasts at the seed level.

For each contrast and seed: the treatment's primary metric minus the baseline's (points for accuracies;
for lower-is-better metrics the sign is flipped, so a positive number is always a gain), from the two arms'
``remit eval`` results of that seed; a side that lists several arms is their per-example mean (the same
held-out examples, paired by index). The headline is the paired t interval over seeds
(:func:`remit.eval.stats.seed_t`); the crossed (seed x example) bootstrap is shown beside it. A contrast's
``test`` is ``superiority`` (the paired t test in the direction of ``alternative``), ``noninferiority``
(H0: gain <= -margin) or ``equivalence`` (TOST within +-margin). Pre-registered hypotheses are tested in order
(fixed sequence at ``alpha``, a hypothesis is tested only if the previous one was rejected) except
``standalone`` ones (each on its own at alpha); ``controls`` are tested each on its own; exploratory
contrasts get Holm-adjusted p-values. Each contrast says what the seeds at hand can detect (the minimum
detectable effect at ``power``) and, with a ``margin``, whether its 90% interval refutes an effect of
practical size. With an ``extension`` the hypotheses are tested in two stages (:func:`_staged`).
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
from remit.experiment.config import Contrast, ExperimentConfig, arm_list, arm_name
from remit.experiment.prereg import prereg
from remit.report.build import load_run
from remit.report.tables import lower_is_better, scale
from remit.utils.io import atomic_write_json, atomic_write_text

CI90 = 0.90  # the pre-registered interval of every confirmatory reading, whatever `confidence` is


def _arm_values(root: Path, seeds: list[int], labels: set[str], metric: str) -> dict[str, dict[int, dict]]:
    """{label: {seed: {"value", "per_example", "path"}}} of one suite/task/metric, through the run-folder
    reader (``path``: the results.json it was read from)."""
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
            out.setdefault(label, {})[s] = {"value": float(cell["value"]), "per_example": [float(v) for v in per],
                                            "path": res["_path"]}
    return out


def _side(vals: dict, arms: str | list[str], seed: int) -> dict:
    """One side of a contrast in one seed: an arm's value and per-example list, or, for a list of arms, the
    mean of their values and their per-example mean (paired by index: the same held-out examples)."""
    cells = [vals[a][seed] for a in arm_list(arms)]
    if len(cells) == 1:
        return cells[0]
    lens = {len(c["per_example"]) for c in cells}
    if len(lens) != 1:
        raise DataError(f"{arm_name(arms)}, seed {seed}: the arms have {sorted(lens)} per-example values; a list of "
                        f"arms averages the same held-out examples, so each must be scored on all of them")
    per = np.mean([c["per_example"] for c in cells], axis=0).tolist() if 0 not in lens else []
    return {"value": float(np.mean([c["value"] for c in cells])), "per_example": per}


def _contrast(c: Contrast, vals: dict, seeds: list[int], metric: str, cfg: ExperimentConfig,
              alpha: float | None = None) -> dict[str, Any]:
    """One contrast's seed-level reading and test (at ``alpha``, default the experiment's); no verdict."""
    alpha = cfg.alpha if alpha is None else alpha
    name = metric.split("/")[2]
    t = {s: _side(vals, c.treatment, s) for s in seeds}
    b = {s: _side(vals, c.baseline, s) for s in seeds}
    k = scale(name, [vals[a][s]["value"] for a in c.arms for s in seeds])
    sign = -1.0 if lower_is_better(name) else 1.0
    per_seed = [sign * k * (t[s]["value"] - b[s]["value"]) for s in seeds]
    est = stats.seed_t(per_seed, confidence=cfg.confidence, alternative=c.alternative)
    two = stats.seed_t(per_seed, confidence=cfg.confidence)
    ci90 = stats.seed_t(per_seed, confidence=CI90)
    tr, bl = arm_name(c.treatment), arm_name(c.baseline)
    # the one-sided p in the contrast's direction: the gain's ("less": the loss's)
    one = stats.seed_t(per_seed, alternative="less" if c.alternative == "less" else "greater").p
    test, p = "paired t over seeds (n - 1 df)", est.p
    if c.test == "noninferiority" and len(seeds) >= 2:
        test, p = f"paired t over seeds of gain + {c.margin:g} > 0 (one-sided, n - 1 df)", \
            stats.noninferiority(per_seed, c.margin)
        one = p
    elif c.test == "equivalence" and len(seeds) >= 2:
        test, p = f"TOST: two one-sided paired t tests over seeds within +-{c.margin:g}", \
            stats.tost(per_seed, c.margin, alpha=alpha)["p"]
        one = p
    row: dict[str, Any] = {
        "name": c.label,
        "contrast": f"{tr} - {bl}" if sign > 0 else f"{bl} - {tr} (lower is better)", "metric": metric,
        "alternative": c.alternative, "kind": c.test, "margin": c.margin, "alpha": alpha,
        "unit": "points" if k == 100.0 else "raw", "gain_sign": sign, "seeds": seeds, "per_seed": per_seed,
        "mean": est.mean, "delta": est.mean, "ci": [two.lo, two.hi], "ci90": [ci90.lo, ci90.hi],
        "bound": est.lo if c.alternative == "greater" else est.hi,
        "p": p, "p_one_sided": one, "sd": est.sd, "test": test,
        "mde": stats.mde(len(seeds), est.sd, alpha=alpha, power=cfg.power,
                         alternative=c.alternative if c.test == "superiority" else "greater")
        if est.sd else float("nan")}
    lens = {len(v[s]["per_example"]) for v in (t, b) for s in seeds}
    if len(seeds) >= 2 and len(lens) == 1 and 0 not in lens:
        d = np.array([np.asarray(t[s]["per_example"]) - np.asarray(b[s]["per_example"]) for s in seeds]) * sign * k
        cb = stats.crossed_bootstrap(d, n_boot=cfg.n_boot, confidence=cfg.confidence, seed=0)
        row["ci_crossed_bootstrap"] = [cb.lo, cb.hi]
    if c.margin > 0 and len(seeds) >= 2:
        row["tost"] = stats.tost(per_seed, c.margin, alpha=alpha)
    return row


def _inconclusive(row: dict, power: float) -> str:
    mde = row.get("mde")
    if mde is None or math.isnan(mde):
        return "inconclusive"
    return f"inconclusive (minimum detectable effect {mde:.3g} {row['unit']} at {int(round(100 * power))}% power)"


def _verdict(row: dict, alpha: float, power: float = 0.8) -> str:
    """The verdict of a hypothesis or control from its p (at ``alpha``) and its 90% interval."""
    if row["p"] is None:
        return "no test (fewer than 2 seeds)"
    if not row.get("tested", True):
        return row.get("not_tested") or "not tested (an earlier hypothesis of the fixed sequence was not rejected)"
    m, (lo, hi) = row.get("margin", 0.0), row.get("ci90", [math.nan, math.nan])
    kind = row.get("kind", "superiority")
    if kind == "equivalence":
        return f"equivalent within +-{m:g}" if row["p"] < alpha else "not shown equivalent"
    if kind == "noninferiority":
        if row["p"] < alpha:
            return f"non-inferior (within -{m:g})"
        return "inferior by more than the margin" if hi < -m else _inconclusive(row, power)
    if row["p"] < alpha:
        if row["alternative"] == "two-sided":
            return f"confirmed (two-sided: the gain is {'positive' if row['mean'] > 0 else 'negative'})"
        return "confirmed"
    if m > 0 and -m < lo and hi < m:
        return f"refuted at practical size (90% interval within +-{m:g})"
    if row["alternative"] == "greater" and hi < 0 or row["alternative"] == "less" and lo > 0:
        return "refuted (the 90% interval lies on the other side of 0)"
    return _inconclusive(row, power)


def _not_run(c: Contrast, rows: dict[str, dict]) -> dict[str, Any]:
    """The row of a ``run_if`` hypothesis whose follow-up arms do not exist (yet)."""
    cond = rows.get(c.run_if, {})
    why = (f"not run yet: {c.run_if} was confirmed, so its follow-up is due (arms missing: "
           f"{', '.join(c.arms)})" if cond.get("rejected") else
           f"not run ({c.run_if} was not confirmed; the follow-up runs only if it is)")
    return {"name": c.label, "contrast": f"{arm_name(c.treatment)} - {arm_name(c.baseline)}", "kind": c.test,
            "margin": c.margin, "run_if": c.run_if, "per_seed": [], "mean": None, "ci90": None, "p": None,
            "p_one_sided": None, "tested": False, "rejected": False, "family": "fixed sequence", "verdict": why}


def _hypotheses(cfg: ExperimentConfig, values: dict, seeds: list[int], alpha: float,
                carried: dict[str, str] | None = None) -> dict[str, dict]:
    """Every hypothesis on ``seeds`` at ``alpha``: the fixed sequence in order, standalone ones each alone.
    ``carried``: {name: verdict} of hypotheses rejected at an earlier stage; they stay rejected (and open the
    sequence's gate) whatever their p on ``seeds``."""
    carried = carried or {}
    ready = [_ready(c, values[c.metric or cfg.metric]) for c in cfg.hypotheses]
    rows = [_contrast(c, values[c.metric or cfg.metric], seeds, c.metric or cfg.metric, cfg, alpha) if ok else None
            for c, ok in zip(cfg.hypotheses, ready)]
    seq = [i for i, c in enumerate(cfg.hypotheses) if not c.standalone and ready[i]]
    gate = [0.0 if rows[i]["name"] in carried else rows[i]["p"] for i in seq]
    stop = None
    for i, f in zip(seq, stats.fixed_sequence(gate, alpha=alpha)):
        rows[i].update(family="fixed sequence", tested=f["tested"], rejected=f["rejected"])
        if not f["tested"] and stop:
            rows[i]["not_tested"] = f"not tested ({stop} was not rejected: fixed sequence)"
        stop = stop or (None if f["rejected"] else rows[i]["name"])
    for i, c in enumerate(cfg.hypotheses):
        if c.standalone and rows[i] is not None:
            p = rows[i]["p"]
            rows[i].update(family="standalone", tested=p is not None,
                           rejected=p is not None and p < alpha or rows[i]["name"] in carried)
    for r in rows:
        if r is not None:
            r["verdict"] = carried.get(r["name"]) or _verdict(r, alpha, cfg.power)
    done = {r["name"]: r for r in rows if r is not None}
    return {c.label: rows[i] or _not_run(c, done) for i, c in enumerate(cfg.hypotheses)}


def _ready(c: Contrast, vals: dict) -> bool:
    """False for a ``run_if`` hypothesis whose arms were not all read (its follow-up has not run)."""
    return not c.run_if or all(a in vals for a in c.arms)


def _staged(cfg: ExperimentConfig, read, config_file: str) -> tuple[list[int], dict, dict, dict | None]:
    """(final seeds, their values, the hypotheses, the extension record). Without an extension: every seed at
    alpha. With one: stage 1 = the seeds that are not extension seeds, at ``alpha_first``; it is final unless
    a named hypothesis that was tested has a one-sided p in ``window``; then, once every extension seed is
    among ``seeds`` and finished, stage 2 tests every hypothesis on all seeds at ``alpha - alpha_first``; one
    rejected at stage 1 stays rejected (its verdict says so) and opens the sequence's gate. The family-wise
    error stays <= alpha_first + (alpha - alpha_first): a true null is rejected only if the first true null
    of the sequence is rejected at stage 1 or at stage 2."""
    ext = cfg.extension
    if not ext:
        values = read(list(cfg.seeds))
        return list(cfg.seeds), values, _hypotheses(cfg, values, list(cfg.seeds), cfg.alpha), None
    first = cfg.stage1_seeds
    values = read(first)
    rows = _hypotheses(cfg, values, first, ext.alpha_first)
    lo, hi = ext.window
    ps = {h: rows[h]["p_one_sided"] if rows[h]["tested"] else None for h in ext.hypotheses}
    hits = [h for h, p in ps.items() if stats.in_window(p, ext.window)]
    shown = ", ".join(f"{h} p = {p:.3g}" if p is not None else f"{h} not tested" for h, p in ps.items())
    rec: dict[str, Any] = {
        "seeds": list(ext.seeds), "stage1_seeds": first, "alpha_first": ext.alpha_first, "window": [lo, hi],
        "hypotheses": list(ext.hypotheses), "triggered": bool(hits), "stage": 1, "alpha_used": ext.alpha_first,
        "final": True, "next": "",
        "reason": (f"{' and '.join(hits)}: stage-1 one-sided p in [{lo:g}, {hi:g}] ({shown})" if hits else
                   f"no stage-1 one-sided p of {', '.join(ext.hypotheses)} in [{lo:g}, {hi:g}] ({shown}): "
                   f"stage 1 is final"),
        "stage1_hypotheses": rows}
    if not hits:
        ran = [x for x in ext.seeds if x in cfg.seeds]
        if ran:
            rec["reason"] += f"; seeds {', '.join(map(str, ran))} are listed but not used (not triggered)"
        return first, values, rows, rec
    every = [*first, *[s for s in ext.seeds if s not in first]]
    missing = [s for s in ext.seeds if s not in cfg.seeds]
    if not missing:
        try:
            values = read(every)
        except DataError as e:
            rec["reason"] += f"; the extension seeds are not all finished ({e})"
        else:
            rec.update(stage=2, alpha_used=round(cfg.alpha - ext.alpha_first, 12))
            # a rejection at stage 1 stands (alpha_first was spent on it); the rest are tested on every seed
            carried = {n: f"{r['verdict']} at stage 1 (seeds {', '.join(map(str, first))}, alpha {ext.alpha_first:g})"
                       for n, r in rows.items() if r["rejected"]}
            return every, values, _hypotheses(cfg, values, every, rec["alpha_used"], carried), rec
    conf = f"--config {config_file}" if config_file else "--config <this experiment's config>"
    rec.update(final=False, next=f"remit experiment {conf} seeds=[{', '.join(map(str, every))}]")
    for r in rows.values():  # stage 2 tests every hypothesis again
        if not r["rejected"]:
            r["verdict"] += "; pending: the extension is triggered"
    return first, values, rows, rec


def _heldout_n(vals: dict) -> int | dict[str, Any]:
    """The number of per-example values per arm: one number if every arm and seed has the same."""
    by_arm = {a: sorted({len(c["per_example"]) for c in by.values()}) for a, by in vals.items()}
    every = {n for ns in by_arm.values() for n in ns}
    if len(every) == 1:
        return every.pop()
    return {a: ns[0] if len(ns) == 1 else ns for a, ns in by_arm.items()}


def analyze(cfg: ExperimentConfig, *, command: str = "", config_file: str = "") -> Path:
    root = Path(cfg.runs_dir) / cfg.name
    by_metric: dict[str, set[str]] = {}
    first = root / f"seed{cfg.seeds[0]}"
    if first.is_dir():  # every arm's primary metric, named by a contrast or not
        suite = cfg.metric.split("/")[0]
        by_metric[cfg.metric] = {label for label, by in load_run(first).evals.items() if suite in by}
    have = set(load_run(first).evals) if first.is_dir() else set()
    for c in [*cfg.hypotheses, *cfg.exploratory, *cfg.controls]:
        if c.run_if and not set(c.arms) <= have:
            continue  # its follow-up has not run: reported as not run
        by_metric.setdefault(c.metric or cfg.metric, set()).update(c.arms)

    def read(seeds: list[int]) -> dict[str, dict]:
        return {m: _arm_values(root, seeds, labels, m) for m, labels in by_metric.items()}

    seeds, values, hypotheses, extension = _staged(cfg, read, config_file)
    files = sorted({c["path"] for vals in values.values() for by in vals.values() for c in by.values()})
    summary: dict[str, Any] = {"name": cfg.name, "seeds": seeds, "metric": cfg.metric, "alpha": cfg.alpha,
                               "confidence": cfg.confidence, "command": command,
                               "min_sign_test_p": stats.min_sign_test_p(len(seeds)),
                               "heldout_n": _heldout_n(values.get(cfg.metric) or {}),
                               **prereg(config_file, files), "extension": extension, "arms": {}}
    for m, vals in values.items():
        for label, by_seed in vals.items():
            summary["arms"].setdefault(label, {})[m] = {
                "per_seed": [by_seed[s]["value"] for s in seeds], "mean": float(np.mean([by_seed[s]["value"] for s in seeds])),
                "per_example": {str(s): by_seed[s]["per_example"] for s in seeds}}
    summary["hypotheses"] = hypotheses
    rows = [_contrast(c, values[c.metric or cfg.metric], seeds, c.metric or cfg.metric, cfg) for c in cfg.controls]
    for r in rows:  # each on its own at alpha
        r.update(family="control", tested=r["p"] is not None, rejected=r["p"] is not None and r["p"] < cfg.alpha)
        r["verdict"] = _verdict(r, cfg.alpha, cfg.power)
    summary["controls"] = {r["name"]: r for r in rows}
    rows = [_contrast(c, values[c.metric or cfg.metric], seeds, c.metric or cfg.metric, cfg) for c in cfg.exploratory]
    if rows:
        for r, h in zip(rows, stats.holm([r["p"] if r["p"] is not None else 1.0 for r in rows], alpha=cfg.alpha)):
            r["p_holm"], r["rejected"] = h["p_holm"], h["rejected"]
    for r in rows:
        r["family"], r["tested"] = "exploratory", r["p"] is not None
        r["verdict"] = "no test (fewer than 2 seeds)" if r["p"] is None else \
            "exploratory: " + ("nominally p < alpha" if r["p"] < cfg.alpha else "not significant")
    summary["exploratory"] = {r["name"]: r for r in rows}
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


def _confirmatory_table(rows: dict, what: str) -> list[str]:
    lines = [f"| {what} | contrast | test | per seed | mean | 90% t CI | p (one-sided) | tested (alpha) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows.values():
        if r.get("run_if") and not r["per_seed"]:  # a follow-up that has not run
            lines.append(f"| {r['name']} | {r['contrast']} | {r['kind']} | - | - | - | - | no | {r['verdict']} |")
            continue
        u = r["unit"]
        kind = r.get("kind", "superiority")
        test = (f"{kind} ({r['alternative']})" if kind == "superiority" else f"{kind} (margin {r['margin']:g})") + \
            (", standalone" if r.get("family") == "standalone" else "")
        p = r.get("p_one_sided")
        tested = ("yes" if r.get("tested") else "no") + f" ({r.get('alpha', '-'):g})"
        lines.append(f"| {r['name']} | {r['contrast']} ({u}) | {test} | {', '.join(_fmt(v, u) for v in r['per_seed'])} "
                     f"| {_fmt(r['mean'], u)} | [{_fmt(r['ci90'][0], u)}, {_fmt(r['ci90'][1], u)}] | "
                     f"{'-' if p is None else f'{p:.3g}'} | {tested} | {r['verdict']} |")
    return lines


def _extension_line(e: dict) -> str:
    seeds = ", ".join(map(str, e["seeds"]))
    if not e["triggered"]:
        return (f"Extension (seeds {seeds}): not triggered. {e['reason']}; the verdicts above are stage 1's "
                f"(alpha {e['alpha_used']:g}) and final.")
    if e["stage"] == 2:
        return (f"Extension (seeds {seeds}): triggered and run. {e['reason']}; the verdicts above are stage 2's "
                f"(all {len(e['stage1_seeds']) + len(e['seeds'])} seeds, alpha {e['alpha_used']:g}).")
    return (f"Extension (seeds {seeds}): triggered, not yet run ({e['reason']}): run `{e['next']}` next; the "
            f"verdicts above are stage 1's (alpha {e['alpha_used']:g}) and not final.")


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
    if s.get("heldout_n") is not None:
        lines += [f"Held-out examples per arm: {s['heldout_n']}.", ""]
    if s.get("prereg_commit"):
        ok = {True: "precedes", False: "does NOT precede", None: "cannot be compared with"}[s["prereg_precedes_results"]]
        lines += [f"Pre-registration: commit `{s['prereg_commit']}` {ok} the results ({s['prereg_check']}).", ""]
    lines += ["## Arms (primary metric, per seed)", "", "| arm | mean | per seed |", "|---|---|---|"]
    for label, by_m in s["arms"].items():
        v = by_m.get(s["metric"]) or next(iter(by_m.values()))
        lines.append(f"| {label} | {v['mean']:.4f} | {', '.join(f'{x:.4f}' for x in v['per_seed'])} |")
    if s.get("hypotheses"):
        alpha = (s.get("extension") or {}).get("alpha_used", s["alpha"])
        lines += ["", f"## Pre-registered hypotheses (fixed sequence, alpha {alpha:g}, each tested only if the "
                  "previous was rejected; standalone ones on their own)", "",
                  *_confirmatory_table(s["hypotheses"], "hypothesis")]
    if s.get("extension"):
        lines += ["", _extension_line(s["extension"])]
    if s.get("controls"):
        lines += ["", f"## Controls (each tested on its own at alpha {s['alpha']:g})", "",
                  *_confirmatory_table(s["controls"], "control")]
    rows = s.get("exploratory") or {}
    if rows:
        lines += ["", "## Exploratory contrasts (Holm-adjusted; not confirmatory)", "",
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
    rows = [r for k in ("hypotheses", "controls", "exploratory") for r in (s.get(k) or {}).values() if r["per_seed"]]
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
