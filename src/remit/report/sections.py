"""The report's sections: each ``fn(run, cfg, out_dir) -> (blocks, numbers)`` (see :mod:`remit.report.render`).

A section that lacks its inputs says "Not available" and why; :func:`remit.report.build.run`
also turns an unexpected failure of one section into such a line.
Modules that import torch (``remit.report.lm``, ``heatmap``, ``shift``) are imported inside the functions that
score models, so that ``remit report --help`` and the sections that only read files stay light.
"""

from __future__ import annotations

import math
from pathlib import Path

from remit.manifest import read_manifest
from remit.models import check_compatible
from remit.report import plots, tables
from remit.report.render import render_md
from remit.utils.io import atomic_write_json, atomic_write_text

NA = "Not available"


def _results(run) -> dict[str, dict]:
    """label -> results (several suites of one model are merged; a clashing task name gets a suite/ prefix)."""
    out = {}
    for label, where in run.evals.items():
        parts = where if isinstance(where, dict) else {"": where}
        merged: dict = {"tasks": {}, "per_example": {}}
        for suite, path in parts.items():
            try:
                res = tables.load_results(path)
            except Exception:  # a missing/bad eval is reported as missing in the table
                continue
            for task, metrics in res["tasks"].items():
                key = f"{suite}/{task}" if task in merged["tasks"] else task
                merged["tasks"][key] = metrics
                if task in (res.get("per_example") or {}):
                    merged["per_example"][key] = res["per_example"][task]
        if merged["tasks"]:
            out[label] = merged
    return out


# Tiny models sit at chance on accuracy; these likelihood metrics still rank checkpoints, so the report
# judges them separately (one verdict line per family; units differ, so they are never averaged together).
FAMILIES = {"accuracy": "accuracy", "bpb": "bits per byte on gold solutions",
            "margin": "log-likelihood margin of the correct option"}


def by_family(res: dict) -> dict[str, dict]:
    """Split one model's results into {family: results} with one metric per task."""
    out: dict[str, dict] = {}
    for task, metrics in res["tasks"].items():
        pe = (res.get("per_example") or {}).get(task, {})
        names = [tables.primary_metric(metrics)] + [m for m in FAMILIES if m != "accuracy" and m in metrics]
        for m in dict.fromkeys(names):
            fam = m if m in FAMILIES and m != "accuracy" else "accuracy"
            part = out.setdefault(fam, {"tasks": {}, "per_example": {}})
            part["tasks"][task] = {m: metrics[m]}
            if m in pe:
                part["per_example"][task] = {m: pe[m]}
    return out


def verdict_section(run, cfg, out):
    results = _results(run)
    pairs = run.verdicts
    if not pairs:
        return [("p", f"{NA}: the run names no ReMiT/vanilla pair (manifest.json 'roles' or 'verdicts').")], {}
    blocks, numbers = [], {}
    for a, b in pairs:
        if a not in results or b not in results:
            missing = [x for x in (a, b) if x not in results]
            blocks.append(("p", f"{NA} for {a} vs {b}: no eval results for {', '.join(missing)}."))
            numbers[f"{a} vs {b}"] = {"available": False}
            continue
        fa, fb = by_family(results[a]), by_family(results[b])
        families = {}
        for i, fam in enumerate(f for f in FAMILIES if f in fa and f in fb):
            deltas = tables.compare_models(fa[fam], fb[fam], n_boot=cfg.n_boot, seed=cfg.seed,
                                           confidence=cfg.confidence)
            avg = tables.average_gain(deltas, confidence=cfg.confidence)
            text = f"By {FAMILIES[fam]}: " + tables.verdict(a, b, avg, deltas, confidence=cfg.confidence,
                                                             n_boot=cfg.n_boot)
            blocks.append(("p", ("**" + text + "**") if i == 0 else text))
            families[fam] = {"available": avg is not None, "beat": bool(avg and avg["gain"] > 0),
                             "significant": bool(avg and (avg["lo"] > 0 or avg["hi"] < 0)), **(avg or {})}
        first = next(iter(families.values()), {"available": False})
        numbers[f"{a} vs {b}"] = {**first, "families": families}
    blocks.append(("p", "Gain = score difference (points for accuracies; sign flipped where lower is better), "
                        f"averaged over the tasks of one metric family; {int(cfg.confidence * 100)}% confidence "
                        f"intervals from a paired bootstrap over examples ({cfg.n_boot} resamples). The unit is the "
                        "example of this one training run: \"significantly\" means this run was measured precisely "
                        "enough, not that another seed would agree. A claim about the method needs several seeds "
                        "(`remit stats` on the per-seed differences)."))
    return blocks, numbers


def results_section(run, cfg, out):
    results = _results(run)
    if not results:
        return [("p", f"{NA}: no eval results.json found.")], {}
    split = {label: by_family(res) for label, res in results.items()}
    cols = list(dict.fromkeys((fam, t) for f in split.values() for fam in FAMILIES if fam in f
                              for t in f[fam]["tasks"]))
    metric = {(fam, t): next(iter(f[fam]["tasks"][t])) for f in split.values() for fam, t in cols
              if fam in f and t in f[fam]["tasks"]}
    header = ["model", "vs"] + [f"{t} ({metric[c]}{', lower is better' if tables.lower_is_better(metric[c]) else ''})"
                                for c in cols for (_, t) in [c]] + ["avg gain [CI] (+ = better)"]
    rows, numbers = [], {}
    for label in list(run.evals):
        res = split.get(label)
        base_label = run.baselines.get(label)
        base = split.get(base_label) if base_label else None
        if res is None:
            rows.append([label, base_label or "", *["not available"] * len(cols), ""])
            continue
        cells, deltas = [], {}
        for fam, t in cols:
            mine = res.get(fam)
            theirs = (base or {}).get(fam)
            d = tables.compare_task(mine, theirs, t, n_boot=cfg.n_boot, seed=cfg.seed,
                                    confidence=cfg.confidence) if mine and theirs else None
            if d:
                deltas.setdefault(fam, []).append(d)
            cells.append(tables.fmt_cell(d, tables.task_value(mine, t) if mine else None))
        avgs = {fam: tables.average_gain(ds, confidence=cfg.confidence) for fam, ds in deltas.items()}
        avg_cell = "; ".join(_avg_cell(fam, a) for fam, a in avgs.items() if a)
        rows.append([label, base_label if base is not None else "", *cells, avg_cell])
        numbers[label] = {"baseline": base_label if base is not None else None,
                          "tasks": {f"{t} ({metric[(fam, t)]})": tables.task_value(res[fam], t)
                                    for fam, t in cols if fam in res},
                          "deltas": {f"{d.task} ({d.metric})": {"delta": d.delta, "lo": d.lo, "hi": d.hi, "p": d.p}
                                     for ds in deltas.values() for d in ds},
                          "avg": avgs}
    note = ("Cells: score (delta vs the model in column 'vs' [CI]); * = the CI excludes 0. A negative bpb delta "
            "is an improvement; the average gain has its sign flipped for bpb, so + is better everywhere in that "
            "column. Accuracies in points "
            "(x100); bpb = bits per byte of the gold solution (lower is better); margin = log p(correct option) - "
            "max log p(wrong option). The average gain is per metric family. Paired bootstrap over per-example "
            "values where both have them, else a normal approximation from the two standard errors.")
    return [("table", header, rows), ("p", note)], numbers


def _avg_cell(fam: str, a: dict) -> str:
    f = tables.num_format([a["gain"], a["lo"], a["hi"]])
    if math.isnan(a["lo"]):
        return f"{fam} {a['gain']:{f}}"
    star = "*" if a["lo"] > 0 or a["hi"] < 0 else ""
    return f"{fam} {a['gain']:{f}} [{a['lo']:{f}}, {a['hi']:{f}}]{star}"


def _midtrain_stages(run) -> dict[str, dict]:
    return {n: s for n, s in run.stages.items() if s.get("kind") == "midtrain"}


def _stage_name(name: str, st: dict) -> str:
    return st.get("label") or name


def curves_section(run, cfg, out):
    runs = {}
    for name, st in _midtrain_stages(run).items():
        f = Path(st["path"]) / "metrics.jsonl"
        if f.is_file():
            rows = plots.read_metrics(f)
            if rows:
                runs[_stage_name(name, st)] = rows
    if not runs:
        return [("p", f"{NA}: no mid-training metrics.jsonl found.")], {}
    path = plots.plot_training_curves(runs, out / "training_curves.png")
    numbers = {k: {"final_loss": next((r["loss"] for r in reversed(v) if "loss" in r), None),
                   "final_nll": next((r["nll"] for r in reversed(v) if "nll" in r), None), "steps": len(v)}
               for k, v in runs.items()}
    return [("img", path, "Mid-training loss (left) and learning rate (right), one line per run.")], numbers


def _find_key(obj, key):
    if isinstance(obj, dict):
        if key in obj and isinstance(obj[key], (int, float)):
            return obj[key]
        for v in obj.values():
            if (r := _find_key(v, key)) is not None:
                return r
    return None


def remit_epsilon(run) -> float:
    """The epsilon of the run in the ReMiT role (the clip range its weights were shown in); 0.2 without one."""
    label = run.roles.get("remit")
    st = next((s for n, s in _midtrain_stages(run).items() if _stage_name(n, s) == label), None)
    return stage_epsilon(st) if st is not None else 0.2


def stage_epsilon(st: dict) -> float:
    m = read_manifest(st["path"]) or {}
    return float(_find_key(m.get("config") or {}, "epsilon") or 0.2)


def _f(x, fmt=".4f"):
    return format(x, fmt) if isinstance(x, (int, float)) else "n/a"


def _texts(path: Path | None, n: int) -> list[str]:
    from remit.report.lm import read_text_file

    if path is None:
        return []
    return read_text_file(path, limit=n)[:n]


def heatmap_section(run, cfg, out):
    from remit.report import heatmap
    from remit.report.lm import load_pair

    if not cfg.heatmap:
        return [("p", "Skipped (heatmap=false).")], {}
    model = run.model("pre_annealing") or run.model("vanilla")
    ref = run.model("reference")
    if model is None or ref is None:
        return [("p", f"{NA}: needs the pre-annealing (or vanilla) model and the RL reference "
                      f"(roles: {run.roles}).")], {}
    src = Path(cfg.sample_text_file) if cfg.sample_text_file else run.data.get("midtrain")
    texts = _texts(src, cfg.sample_texts)
    if not texts:
        return [("p", f"{NA}: no mid-training text to show (sample_text_file or data.midtrain).")], {}

    check_compatible(model[1], ref[1])
    m, tok = load_pair(model[1], device=cfg.device, dtype=cfg.dtype)
    r, _ = load_pair(ref[1], device=cfg.device, dtype=cfg.dtype)
    eps = remit_epsilon(run)
    s = heatmap.score_texts(m, r, tok, texts, epsilon=eps, max_length=cfg.max_length, batch_size=cfg.batch_size,
                            max_windows=cfg.text_windows)
    del m, r
    png = heatmap.render_png(s, out / "weights_heatmap.png", epsilon=eps,
                             title=f"ReMiT weights (model being trained: {model[0]}, reference: {ref[0]})")
    sub = f"model being trained: {model[0]}; reference: {ref[0]}; eps = {eps:g}; text: {src}"

    atomic_write_text(out / "weights_heatmap.html", heatmap.render_html(s, epsilon=eps, title="ReMiT token weights",
                                                                        subtitle=sub))
    up, down = heatmap.top_tokens(s, k=12)
    vis = heatmap._visible
    rows = [[vis(u["token"]), u["count"], f"{u['mean_weight']:.3f}", vis(d["token"]), d["count"],
             f"{d['mean_weight']:.3f}"] for u, d in zip(up, down)]
    blocks = [("p", sub + ". Red tokens are up-weighted (the RL model predicts them better than the model being "
                          "trained), blue ones down-weighted. Interactive version (hover for numbers): "
                          "`report/weights_heatmap.html`."),
              ("md", f"![token heat-map]({Path('report') / png.name})"),
              ("html", heatmap.render_fragment(s, epsilon=eps, top_k=12)),
              ("md", "Tokens with the highest / lowest mean weight over the sample:"),
              ("md", _md_table(["up-weighted", "n", "mean w", "down-weighted", "n", "mean w"], rows))]
    return blocks, {"n_tokens": len(s.weight), "mean_weight": sum(s.weight) / len(s.weight), "top_up": up[:5],
                    "top_down": down[:5]}


def _md_table(header, rows) -> str:
    return render_md([("table", header, rows)], Path(".")).rstrip()


def dynamics_section(run, cfg, out):
    from remit.report import shift

    if not cfg.dynamics:
        return [("p", "Skipped (dynamics=false).")], {}
    order = ["pre_annealing", "vanilla", "remit", "sft", "rl"]
    chosen = {role: run.model(role) for role in order}
    chosen = {k: v for k, v in chosen.items() if v is not None}
    target = run.model("reference") or run.model("rl")
    if target is None or len(chosen) < 2:
        return [("p", f"{NA}: needs the RL model and at least one other checkpoint (roles: {run.roles}).")], {}
    src = Path(cfg.probe_file) if cfg.probe_file else run.data.get("probe") or run.data.get("midtrain")
    texts = _texts(src, cfg.probe_texts)
    if not texts:
        return [("p", f"{NA}: no probe texts (probe_file, data.probe or data.midtrain).")], {}
    paths, labels = [], []
    for role, (label, path) in chosen.items():
        name = f"{label} ({role.replace('_', '-')})" if label != role else label
        if str(path) in paths:  # one checkpoint in two roles: one bar, both names
            labels[paths.index(str(path))] += f" = {name}"
        else:
            paths.append(str(path))
            labels.append(name)
    origin = str(chosen["pre_annealing"][1]) if "pre_annealing" in chosen else None
    res = shift.compute_shift(paths, texts, labels=labels, target=str(target[1]), origin=origin,
                              max_length=cfg.max_length, batch_size=cfg.batch_size, device=cfg.device,
                              dtype=cfg.dtype)
    atomic_write_json(out / "shift.json", res)
    png = shift.plot_shift(res, out / "shift.png")
    rows = [[r["label"], f"{r['kl_to_target']:.4f}", f"{r['logp_gap']:+.4f}", f"{r['kl_from_origin']:.4f}"]
            for r in res["models"]]
    blocks = [("p", f"Probe set: {len(texts)} texts from `{src}`, {res['n_tokens']} tokens. Target = "
                    f"{res['target']}, origin = {res['origin']}. KL over the full vocabulary, mean per token."),
              ("img", png, "Distance of each checkpoint to the RL model (KL and log-prob gap) and from the "
                           "pre-annealing checkpoint."),
              ("table", ["checkpoint", "KL(p_target || p_ckpt)", "log p_target - log p_ckpt",
                         "KL(p_ckpt || p_origin)"], rows)]
    by_role = {role: next(r for r in res["models"] if r["path"] == str(chosen[role][1])) for role in chosen}
    if {"pre_annealing", "vanilla", "rl"} <= set(by_role):
        anneal = by_role["vanilla"]["kl_from_origin"]
        rl_move = by_role["rl"]["kl_from_origin"]
        closer = by_role["vanilla"]["kl_to_target"] < by_role["pre_annealing"]["kl_to_target"]
        blocks.append(("p", f"Annealing moved the model by KL {anneal:.4f} from the pre-annealing checkpoint "
                            f"(the RL model is at {rl_move:.4f} from it); annealing "
                            f"{'brought the model closer to' if closer else 'did not bring the model closer to'} "
                            f"the RL model (KL {by_role['pre_annealing']['kl_to_target']:.4f} -> "
                            f"{by_role['vanilla']['kl_to_target']:.4f})."))
    return blocks, res


def cost_section(run, cfg, out):
    rows = []
    for name, st in run.stages.items():
        m = read_manifest(st["path"]) or {}
        wall = m.get("wall_s") if isinstance(m.get("wall_s"), (int, float)) else st.get("wall_s")
        tokens = m.get("tokens") if isinstance(m.get("tokens"), (int, float)) else st.get("tokens")
        tps = m.get("tokens_per_s") if isinstance(m.get("tokens_per_s"), (int, float)) else st.get("tokens_per_s")
        if tps is None and isinstance(tokens, (int, float)) and isinstance(wall, (int, float)) and wall > 0:
            tps = tokens / wall
        rows.append({"name": name, "kind": st.get("kind"), "method": st.get("method"), "wall_s": wall,
                     "tokens": tokens, "tokens_per_s": tps})
    if not rows:
        return [("p", f"{NA}: the run lists no stages.")], {}
    table = [[r["name"], r["kind"] or "", r["method"] or "", _f(r["wall_s"], ".1f"), _f(r["tokens"], ",.0f"),
              _f(r["tokens_per_s"], ",.0f")] for r in rows]
    total = sum(r["wall_s"] for r in rows if isinstance(r["wall_s"], (int, float)))
    blocks = [("table", ["stage", "kind", "method", "wall time (s)", "tokens", "tokens/s"], table),
              ("p", f"Total wall time of the listed stages: {total:.1f} s. n/a = not recorded.")]
    path = plots.plot_stage_costs(rows, out / "stage_costs.png")
    if path is not None:
        blocks.insert(0, ("img", path, "Wall time per stage (tokens/s of the training stages in the labels)."))
    return blocks, {"stages": rows, "total_wall_s": total}
