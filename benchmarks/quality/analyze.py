"""Tables, plots and a JSON of every number from a quality-experiment work folder.

    .venv/bin/python benchmarks/quality/run.py --analyze-only [--work runs/quality]

Per method (mid-trained model, and the same after SFT -> DPO -> GRPO): mean and standard deviation over
seeds of each paper10 metric that moves at this scale (gold-solution bits per byte, multiple-choice
log-likelihood margin, accuracy), and its difference to vanilla: the seed-s model vs the seed-s vanilla on the
same documents, one difference per seed, with the seed-level paired t interval (remit.eval.stats).
``seed_diffs(results)`` turns a results.json's per-seed levels into per-seed differences for ``remit stats``
(also for results written before the seed-level analysis):

    python benchmarks/quality/analyze.py --seed-diffs benchmarks/results/quality/results.json OUT.json
Also: the sample-efficiency curve (held-out gold bpb against mid-training tokens), ReMiT weight statistics
(spread, clip saturation, delta spread) and how far each RL model is from its base.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from remit.eval import stats

BPB_TASKS = ("gsm8k", "math", "humaneval", "mbpp")
MC_TASKS = ("arc_easy", "arc_challenge", "mmlu", "boolq", "piqa", "winogrande")
GEN = {"gsm8k": "exact_match", "math": "exact_match", "humaneval": "pass@1", "mbpp": "pass@1"}
ORDER = ("vanilla", "remit-r1", "remit-r2", "sft-guided", "kd", "rho1", "miniplm")  # when the run has no recipe


def _order(meta: dict | None) -> list[str]:
    """Method labels in the recipe's order (vanilla first); the default order for older work folders."""
    methods = list((((meta or {}).get("recipe") or {}).get("midtrain") or {}).get("methods") or ORDER)
    return sorted(methods, key=lambda k: k != "vanilla")


def _load(p: Path) -> Any:
    return json.loads(p.read_text()) if p.is_file() else None


def _evals(work: Path) -> dict[str, dict[int, dict]]:
    """{label: {seed: results}} for every finished eval (label 'pre-annealing' has seed -1)."""
    out: dict[str, dict[int, dict]] = {}
    for d in sorted((work / "eval").glob("*")):
        res = _load(d / "results.json")
        if res is None:
            continue
        m = re.match(r"^(.*)-s(\d+)$", d.name)
        label, seed = (m.group(1), int(m.group(2))) if m else (d.name, -1)
        out.setdefault(label, {})[seed] = res
    return out


def _per_example(res: dict, task: str, metric: str) -> list[float]:
    return list(res.get("per_example", {}).get(task, {}).get(metric, []))


def _metrics() -> list[tuple[str, str, str]]:
    """(name, task or aggregate, metric) of the columns; aggregates pool their tasks' examples."""
    cols = [("bpb avg (4 gold sets)", "BPB", "bpb"), ("margin avg (6 MC)", "MC", "margin"),
            ("acc avg (6 MC)", "MC", "acc")]
    cols += [(f"{t} bpb", t, "bpb") for t in BPB_TASKS]
    cols += [(f"{t} margin", t, "margin") for t in MC_TASKS]
    cols += [(f"{t} acc", t, "acc") for t in MC_TASKS]
    cols += [(f"{t} {GEN[t]}", t, GEN[t]) for t in BPB_TASKS]
    return cols


def _values(res: dict, task: str, metric: str) -> list[float]:
    tasks = {"BPB": BPB_TASKS, "MC": MC_TASKS}.get(task, (task,))
    out: list[float] = []
    for t in tasks:
        out += _per_example(res, t, metric)
    return out


def table(evals: dict, labels: list[str], base: str) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for label in labels:
        if label not in evals:
            continue
        row: dict[str, Any] = {"seeds": sorted(evals[label])}
        for name, task, metric in _metrics():
            per_seed = {s: _values(r, task, metric) for s, r in evals[label].items()}
            means = [float(np.mean(v)) for v in per_seed.values() if v]
            if not means:
                continue
            cell: dict[str, Any] = {"mean": float(np.mean(means)), "std": float(np.std(means, ddof=1)) if len(means) > 1
                                    else 0.0, "per_seed": [float(x) for x in means]}
            if label != base and base in evals:
                diffs, n_pairs = [], 0
                for s, v in per_seed.items():
                    b = _values(evals[base].get(s, {}), task, metric) if s in evals[base] else []
                    n = min(len(v), len(b))
                    if n:
                        diffs.append(float(np.mean(np.asarray(v[:n]) - np.asarray(b[:n]))))
                        n_pairs += n
                if len(diffs) >= 2:  # the unit is the seed: paired t over per-seed differences
                    t = stats.seed_t(diffs)
                    cell.update(delta=t.mean, ci=[t.lo, t.hi], p=t.p, diff_per_seed=diffs, n_pairs=n_pairs,
                                significant=t.significant, test="paired t over seeds")
            row[name] = cell
        rows[label] = row
    return rows


def curves(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in sorted((work / "curves").glob("*-s*.json")):
        m = re.match(r"^(.*)-s(\d+)\.json$", f.name)
        if m:
            out.setdefault(m.group(1), {})[int(m.group(2))] = _load(f)["points"]
    summary: dict[str, Any] = {}
    for label, by_seed in out.items():
        tokens = sorted({p["tokens"] for pts in by_seed.values() for p in pts})
        mean = []
        for t in tokens:
            vals = [p["bpb"]["all"] for pts in by_seed.values() for p in pts if p["tokens"] == t]
            mean.append([t, float(np.mean(vals)), float(np.std(vals)), len(vals)])
        summary[label] = {"seeds": sorted(by_seed), "mean_curve": mean}
    if "vanilla" in summary:
        target = summary["vanilla"]["mean_curve"][-1][1]
        for s in summary.values():
            reach = None
            pts = s["mean_curve"]
            for (t0, b0, *_), (t1, b1, *_) in zip(pts, pts[1:]):
                if b0 > target >= b1:
                    reach = t0 + (t1 - t0) * (b0 - target) / (b0 - b1)
                    break
            if reach is None and pts and pts[0][1] <= target:
                reach = 0.0
            s["tokens_to_reach_vanilla_final"] = reach
            s["speedup_vs_vanilla"] = (pts[-1][0] / reach) if reach else None
        summary["vanilla_final_bpb"] = target
    return {"raw": out, "summary": summary}


def weight_stats(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in sorted(work.glob("s*/mid-*/metrics.jsonl")):
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        rows = [r for r in rows if "w_std" in r]
        if not rows:
            continue
        label = f.parent.name[len("mid-"):]
        agg = {k: float(np.mean([r[k] for r in rows])) for k in ("w_mean", "w_std", "w_frac_hi", "w_frac_lo",
                                                               "delta_mean", "delta_std")}
        agg["clip_saturation"] = agg["w_frac_hi"] + agg["w_frac_lo"]
        agg["first_delta_std"], agg["last_delta_std"] = rows[0]["delta_std"], rows[-1]["delta_std"]
        out.setdefault(label, {})[f.parent.parent.name] = agg
    return out


def posttrain_stats(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in sorted(work.glob("s*/post-*/manifest.json")):
        m = _load(f)
        st = m.get("stages", {})
        rec = {k: {"pre": (v.get("eval") or {}).get("pre"), "post": (v.get("eval") or {}).get("post"),
                   "skipped": v.get("skipped"), "pairs": v.get("pairs")} for k, v in st.items()}
        out.setdefault(f.parent.name[len("post-"):], {})[f.parent.parent.name] = rec
    return out


def _fmt(c: dict | None, lower: bool, digits: int = 3) -> str:
    if not c:
        return "n/a"
    s = f"{c['mean']:.{digits}f} ± {c['std']:.{digits}f}"
    if "delta" in c:
        better = (c["delta"] < 0) == lower
        mark = ("**" if better else "_") if c["significant"] else ""
        s += f"<br>Δ {mark}{c['delta']:+.{digits}f} [{c['ci'][0]:+.{digits}f}, {c['ci'][1]:+.{digits}f}]{mark}"
    return s


def markdown(res: dict[str, Any]) -> str:
    meta = res.get("meta") or {}
    lines = ["# Quality experiment (issue #7): ReMiT vs vanilla and baselines on real data", "",
             f"Command: `{meta.get('command', 'n/a')}`  ", f"Commit: `{meta.get('git_head', 'n/a')}`  ",
             f"Scale: {meta.get('scale')}, seeds: {meta.get('seeds')}, started {meta.get('first_started')}, "
             f"finished {meta.get('finished', 'NOT FINISHED (partial results)')}", ""]
    for note in res.get("notes", []):
        lines += [note, ""]
    heads = ["bpb avg (4 gold sets)", "margin avg (6 MC)", "acc avg (6 MC)", "gsm8k bpb", "math bpb",
             "humaneval bpb", "mbpp bpb"]
    for key, title in (("base", "Mid-trained models (before post-training)"),
                       ("post", "After post-training (SFT -> DPO -> GRPO)")):
        tab = res["tables"][key]
        lines += ["", f"## {title}", "",
                  "mean ± std over seeds; Δ = difference to vanilla (same seed, same examples) with a paired "
                  "bootstrap 95% CI over (seed, example) pairs; **bold** = significantly better, _italic_ = "
                  "significantly worse. bpb: lower is better.", "",
                  "| model | seeds | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
        for label, row in tab.items():
            cells = [_fmt(row.get(h), "bpb" in h) for h in heads]
            lines.append(f"| {label} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
        mc = [f"{t} margin" for t in MC_TASKS]
        lines += ["", "Per-task margins (log p(gold) - max log p(wrong)):", "",
                  "| model | " + " | ".join(mc) + " |", "|---|" + "---|" * len(mc)]
        for label, row in tab.items():
            lines.append(f"| {label} | " + " | ".join(_fmt(row.get(h), False, 2) for h in mc) + " |")
        acc = [f"{t} acc" for t in MC_TASKS] + [f"{t} {GEN[t]}" for t in BPB_TASKS]
        lines += ["", "Accuracies (chance: ARC/MMLU 0.25, BoolQ/PIQA/WinoGrande 0.5):", "",
                  "| model | " + " | ".join(acc) + " |", "|---|" + "---|" * len(acc)]
        for label, row in tab.items():
            lines.append(f"| {label} | " + " | ".join(
                (f"{row[h]['mean']:.3f}" if h in row else "n/a") for h in acc) + " |")
    cs = res["curves"]["summary"]
    lines += ["", "## Sample efficiency (held-out gold bpb vs mid-training tokens)", "",
              "![curve](sample_efficiency.png)", ""]
    if "vanilla_final_bpb" in cs:
        lines.append(f"Vanilla's final held-out gold bpb: {cs['vanilla_final_bpb']:.4f}.")
        for label, s in cs.items():
            if isinstance(s, dict) and label != "vanilla":
                reach = s.get("tokens_to_reach_vanilla_final")
                total = s["mean_curve"][-1][0]
                lines.append(f"- {label}: final {s['mean_curve'][-1][1]:.4f}; " + (
                    f"reaches vanilla's final value after {reach:,.0f} of {total:,} tokens "
                    f"({s['speedup_vs_vanilla']:.2f}x fewer)" if reach else "does not reach vanilla's final value"))
    lines += ["", "## ReMiT weight statistics (mean over logged steps and seeds)", "",
              "| run | w_std | clip saturation (w at 1±eps) | delta_std first -> last |", "|---|---|---|---|"]
    for label, by_seed in res["weights"].items():
        v = list(by_seed.values())
        lines.append(f"| {label} | {np.mean([x['w_std'] for x in v]):.3f} | "
                     f"{np.mean([x['clip_saturation'] for x in v]):.1%} | "
                     f"{np.mean([x['first_delta_std'] for x in v]):.3f} -> {np.mean([x['last_delta_std'] for x in v]):.3f} |")
    lines += ["", "## Post-training: held-out reward (eval.jsonl, greedy) and distance to the base", "",
              "| model | reward before SFT | after SFT | after DPO | after GRPO | gold bpb base -> RL |",
              "|---|---|---|---|---|---|"]
    fb = res.get("final_bpb") or {}
    for label, by_seed in res["posttrain"].items():
        def m(stage: str, k: str, by_seed: dict = by_seed) -> str:
            xs = [v[stage][k] for v in by_seed.values() if stage in v and v[stage][k] is not None]
            return f"{np.mean(xs):.3f}" if xs else "n/a"
        gaps = [(fb[f"{label}/{s}"]["all"], fb[f"{label}+post/{s}"]["all"]) for s in by_seed
                if f"{label}/{s}" in fb and f"{label}+post/{s}" in fb]
        gap = f"{np.mean([g[0] for g in gaps]):.3f} -> {np.mean([g[1] for g in gaps]):.3f}" if gaps else "n/a"
        lines.append(f"| {label} | {m('sft', 'pre')} | {m('sft', 'post')} | {m('dpo', 'post')} | "
                     f"{m('grpo', 'post')} | {gap} |")
    lines += ["", "## Wall time", "", f"{res.get('wall', {})}", "", "![deltas](deltas.png)", ""]
    return "\n".join(lines) + "\n"


def plots(res: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    raw = res["curves"]["raw"]
    for label, s in res["curves"]["summary"].items():
        if not isinstance(s, dict):
            continue
        c = np.asarray(s["mean_curve"])
        ax.plot(c[:, 0] / 1e3, c[:, 1], marker="o", label=f"{label} (n={len(s['seeds'])} seeds)")
        ax.fill_between(c[:, 0] / 1e3, c[:, 1] - c[:, 2], c[:, 1] + c[:, 2], alpha=0.2)
        if label != "vanilla" and "vanilla" in raw:  # paired by seed and step
            diffs: dict[int, list[float]] = {}
            for seed, pts in raw[label].items():
                van = {p["tokens"]: p["bpb"]["all"] for p in raw["vanilla"].get(seed, [])}
                for p in pts:
                    if p["tokens"] in van:
                        diffs.setdefault(p["tokens"], []).append(p["bpb"]["all"] - van[p["tokens"]])
            ts = sorted(diffs)
            ax2.errorbar(np.asarray(ts) / 1e3, [np.mean(diffs[t]) for t in ts],
                         yerr=[np.std(diffs[t]) for t in ts], marker="o", capsize=3, label=label)
    ax.set_xlabel("mid-training tokens (thousands)")
    ax.set_ylabel("held-out gold bits per byte (GSM8K+MATH test)")
    ax.set_title("Sample efficiency: mean ± std over seeds", fontsize=10)
    ax.legend()
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xlabel("mid-training tokens (thousands)")
    ax2.set_ylabel("bpb(method) - bpb(vanilla), same seed (< 0: better)")
    ax2.set_title("Difference to vanilla: mean ± std over seeds", fontsize=10)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "sample_efficiency.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, (key, title) in enumerate((("base", "mid-trained"), ("post", "after post-training"))):
        tab = res["tables"][key]
        labels = [k for k in tab if "delta" in tab[k].get("bpb avg (4 gold sets)", {})]
        for row, (metric, color, name) in enumerate((("bpb avg (4 gold sets)", "tab:blue", "-Δ bpb avg (4 gold sets)"),
                                                     ("margin avg (6 MC)", "tab:orange", "Δ margin avg (6 MC)"))):
            ax = axes[row, col]
            sign = -1 if "bpb" in metric else 1
            ys = [sign * tab[k][metric]["delta"] for k in labels]
            lo_hi = [(tab[k][metric]["delta"] - tab[k][metric]["ci"][0], tab[k][metric]["ci"][1] - tab[k][metric]["delta"])
                     for k in labels]  # distances below / above the delta; flipped with the sign
            err = np.array([(a, b) if sign > 0 else (b, a) for a, b in lo_hi]).reshape(-1, 2).T
            ax.bar(np.arange(len(labels)), ys, 0.6, yerr=err if len(labels) else None, color=color, capsize=4)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(np.arange(len(labels)), labels, rotation=25, ha="right")
            ax.set_ylabel(f"{name}\n(higher = better than vanilla)", fontsize=8)
            ax.set_title(f"{title}: vs vanilla, 95% paired CI", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "deltas.png", dpi=110)
    plt.close(fig)


def analyze(work: Path, out: Path) -> Path:
    evals = _evals(work)
    meta = _load(work / "run_meta.json")
    order = _order(meta)
    base_labels = ["pre-annealing"] + [k for k in order if k in evals] + \
                  sorted(k for k in evals if k not in order and not k.endswith("+post") and k != "pre-annealing")
    post_labels = [f"{k}+post" for k in order if f"{k}+post" in evals]
    ledger = _load(work / "ledger.json") or {"stages": {}}
    walls: dict[str, float] = {}
    for sid, rec in ledger["stages"].items():
        head, _, tail = sid.partition("/")
        kind = head if head in ("eval", "curve", "pretrain") else tail.split("-")[0]
        walls[kind] = round(walls.get(kind, 0.0) + float(rec.get("wall_s", 0.0)), 1)
        if kind == "mid":
            key = "mid:" + tail[len("mid-"):]
            walls[key] = round(walls.get(key, 0.0) + float(rec.get("wall_s", 0.0)), 1)
    walls["total"] = round(sum(v for k, v in walls.items() if ":" not in k), 1)
    res = {"meta": meta, "prep": _load(work / "data" / "prep.json"),
           "tables": {"base": table(evals, base_labels, "vanilla"), "post": table(evals, post_labels, "vanilla+post")},
           "curves": curves(work), "weights": weight_stats(work), "posttrain": posttrain_stats(work),
           "final_bpb": _load(work / "curves" / "final_models.json"), "wall": {"seconds_by_kind": walls}}
    notes = out / "notes.md"  # hand-written reading of the numbers (kept across re-analyses)
    res["notes"] = [notes.read_text().rstrip()] if notes.is_file() else []
    done = {(k, s) for k, by in evals.items() for s in by}
    res["missing"] = [f"{k}-s{s}" for k in [*order, *(f"{x}+post" for x in order)]
                      for s in ((res["meta"] or {}).get("seeds") or []) if (k, s) not in done]
    if res["missing"]:
        res["notes"].insert(0, "**Partial results**: not (yet) evaluated: " + ", ".join(res["missing"]) + ".")
    out.mkdir(parents=True, exist_ok=True)
    plots(res, out)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=lambda o: None if isinstance(o, float)
                                                 and math.isnan(o) else str(o)))
    (out / "results.md").write_text(markdown(res))
    return out / "results.md"


def seed_diffs(results: dict) -> dict:
    """{table: {arm: {metric: {"per_seed": [arm - baseline per seed], "delta": mean}}}} from the per-seed levels."""
    out: dict[str, Any] = {}
    for tname, rows in (results.get("tables") or {}).items():
        base = "vanilla" if tname == "base" else "vanilla+post"
        if base not in rows:
            continue
        for arm, row in rows.items():
            if arm in (base, "pre-annealing"):
                continue
            for metric, cell in row.items():
                ref = rows[base].get(metric)
                if not (isinstance(cell, dict) and isinstance(ref, dict) and row.get("seeds") == rows[base].get("seeds")):
                    continue
                diffs = [float(a - b) for a, b in zip(cell["per_seed"], ref["per_seed"])]
                if len(diffs) >= 2:
                    out.setdefault(tname, {}).setdefault(arm, {})[metric] = {"per_seed": diffs,
                                                                             "delta": float(np.mean(diffs))}
    return out


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "--seed-diffs":
        Path(sys.argv[3]).write_text(json.dumps(seed_diffs(json.loads(Path(sys.argv[2]).read_text())), indent=1))
    else:
        sys.exit("usage: python benchmarks/quality/analyze.py --seed-diffs RESULTS.json OUT.json")
