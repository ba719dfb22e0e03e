"""Tables of the flywheel experiment (issue #11) from a work folder of run.py.

    python benchmarks/flywheel/analyze.py runs/flywheel-exp --seeds 0 1 2 3 4

Writes ``results.md``, ``summary.json`` (the schema of issue #11) and ``curves.png`` into the results
folder. Every comparison is paired (the same held-out tasks and the same seed's data order on both sides);
its interval is the seed-level paired t interval (remit.eval.stats.seed_t), with the crossed (seed x task)
bootstrap as a secondary description. bpb is "lower is better"; its deltas are reported as measured.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
from pathlib import Path

import numpy as np

from remit.eval import stats

ARMS = ("vanilla", "remit-r1", "sft-guided", "remit-r2", "kd", "rho1")
N_BOOT = 4000


def _load(path: Path) -> dict | None:
    f = path / "results.json"
    return json.loads(f.read_text()) if f.is_file() else None


def per_example(work: Path, seed: int, label: str, metric: str) -> list[float] | None:
    if metric == "bpb":  # scored the same way for every seed (gold_bpb.py), not the world suite's companion
        g = _gold(work).get(f"seed{seed}/{label}")
        return None if g is None else [b / n for b, n in zip(g["bits"], g["bytes"])]
    res = _load(work / f"seed{seed}" / f"eval-{label}-world")
    if res is None:
        return None
    return (res.get("per_example", {}).get("world") or {}).get(metric)


def _gold(work: Path) -> dict:
    f = work / "gold_bpb.json"
    return _read_json(str(f), f.stat().st_mtime_ns) if f.is_file() else {}


@functools.lru_cache(maxsize=4)
def _read_json(path: str, mtime_ns: int) -> dict:  # read once per version of the file, not once per lookup
    return json.loads(Path(path).read_text())


def complete(work: Path, seed: int) -> bool:
    """Every arm's base and post-trained eval, and the vanilla chain's stage manifests, exist."""
    return all(_load(work / f"seed{seed}" / f"eval-{a}-world") is not None and f"seed{seed}/{a}" in _gold(work)
               for a in ARMS) and all(
        (work / f"seed{seed}" / f"post-{a}" / "grpo" / "manifest.json").is_file() for a in ARMS) and all(
        (work / f"seed{seed}" / "post-vanilla" / st / "manifest.json").is_file() for st in ("sft", "dpo"))


def paired(a: list[list[float]], b: list[list[float]], *, seed: int = 0) -> dict:
    """mean(a - b): the seed-level paired t interval (the headline; one difference per seed) and, as a
    secondary description, the crossed (seed x example) bootstrap, both from remit.eval.stats."""
    d = [np.asarray(x, dtype=float) - np.asarray(y, dtype=float) for x, y in zip(a, b)]
    per_seed = [float(x.mean()) for x in d]
    out = {"delta": float(np.mean(per_seed)), "per_seed": per_seed, "test": "paired t over seeds"}
    if len(d) >= 2:
        t = stats.seed_t(per_seed)
        out.update(ci=[t.lo, t.hi], p=t.p)
        if len({len(x) for x in d}) == 1:
            c = stats.crossed_bootstrap(np.stack(d), n_boot=N_BOOT, seed=seed)
            out["ci_crossed_bootstrap"] = [c.lo, c.hi]
    else:  # one run: the interval describes that run only (examples resampled)
        e, _ = stats.paired_bootstrap(b[0], a[0], n_boot=N_BOOT, seed=seed)
        out.update(ci=[e.lo, e.hi], p=e.p, test="paired bootstrap over examples (one run)")
    return out


def stage_info(work: Path, seed: int, label: str, stage: str) -> dict:
    m = work / f"seed{seed}" / f"post-{label}" / stage / "manifest.json"
    return json.loads(m.read_text()) if m.is_file() else {}


def stage_values(work: Path, seed: int, label: str, stage: str) -> list[float] | None:
    """The per-prompt held-out rewards after a post-training stage."""
    return (stage_info(work, seed, label, stage).get("eval") or {}).get("post_values")


def _fmt(c: dict, scale: float = 100.0, digits: int = 2) -> str:
    s = "*" if c["ci"][0] > 0 or c["ci"][1] < 0 else ""
    d, lo, hi = (scale * x for x in (c["delta"], *c["ci"]))
    return f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]{s}"


def _reach(points_a: list[dict], target: float, key: str, better) -> float | None:
    for p in points_a:
        if better(p[key], target):
            return p["tokens"]
    return None


def efficiency(work: Path, seeds: list[int]) -> dict:
    f = work / "curves.json"
    if not f.is_file():
        return {}
    cur = json.loads(f.read_text())
    out = {}
    for key, better in (("acc", lambda v, t: v >= t), ("bpb", lambda v, t: v <= t)):
        mean = {}
        for label in ("vanilla", "remit-r1"):
            series = [cur[f"seed{s}/{label}"]["points"] for s in seeds if f"seed{s}/{label}" in cur]
            if not series:
                return {}
            n = min(map(len, series))
            mean[label] = [{"tokens": series[0][i]["tokens"], key: float(np.mean([s[i][key] for s in series]))}
                           for i in range(n)]
        target = mean["vanilla"][-1][key]
        t_remit = _reach(mean["remit-r1"], target, key, better)
        t_van = mean["vanilla"][-1]["tokens"]
        out[key] = {"vanilla_final": target, "vanilla_tokens": t_van, "remit_tokens_to_reach": t_remit,
                    "ratio": (t_van / t_remit) if t_remit else None, "curves": mean}
    return out


def plot(eff: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, key in enumerate(("acc", "bpb")):
        for label, color in (("vanilla", "tab:gray"), ("remit-r1", "tab:red")):
            pts = eff[key]["curves"][label]
            ax[i].plot([p["tokens"] / 1e3 for p in pts], [p[key] for p in pts], "o-", color=color, label=label)
        ax[i].set_xlabel("mid-training tokens (k)")
        ax[i].set_ylabel("held-out accuracy (base, greedy)" if key == "acc" else "gold bits per byte")
        ax[i].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def analyze(work: Path, seeds: list[int], results: Path, *, command: str = "") -> Path:
    results.mkdir(parents=True, exist_ok=True)
    seeds = [s for s in seeds if complete(work, s)]  # a seed still running is left out (and said so)
    arms = {}
    for arm in ARMS:
        base = [per_example(work, s, arm, "exact_match") for s in seeds]
        post = [stage_values(work, s, arm, "grpo") for s in seeds]  # held-out reward after the same post-training
        bpb = [per_example(work, s, arm, "bpb") for s in seeds]
        if any(x is None for x in base + bpb):
            continue
        gold = [_gold(work)[f"seed{s}/{arm}"] for s in seeds]
        arms[arm] = {"base_acc": float(np.mean([np.mean(x) for x in base])),
                     "post_acc": float(np.mean([np.mean(x) for x in post])) if all(post) else None,
                     "bpb": float(np.mean([sum(g["bits"]) / sum(g["bytes"]) for g in gold])),
                     "base_acc_per_seed": [float(np.mean(x)) for x in base],
                     "post_acc_per_seed": [float(np.mean(x)) for x in post] if all(post) else None}
    sft = [stage_values(work, s, "vanilla", "sft") for s in seeds]
    grpo = [stage_values(work, s, "vanilla", "grpo") for s in seeds]
    rl = {"sft_acc": [float(np.mean(x)) for x in sft], "grpo_acc": [float(np.mean(x)) for x in grpo]}
    gain = paired(grpo, sft)
    per_seed_ci = [paired([g], [f], seed=i) for i, (g, f) in enumerate(zip(grpo, sft))]
    zero_std = [stage_info(work, s, "vanilla", "grpo").get("frac_reward_zero_std") for s in seeds]
    pairs = [((stage_info(work, s, "vanilla", "dpo").get("pairs") or {}).get("pairs")) for s in seeds]

    def cmp(a: str, b: str, metric: str, post: bool = False) -> dict:
        if post:  # the chat model's held-out reward (its own prompt format), as measured by the post-training
            sa, sb = ([stage_values(work, s, x, "grpo") for s in seeds] for x in (a, b))
            return {**paired(sa, sb), "metric": "held-out reward after SFT -> DPO -> GRPO"}
        sa = [per_example(work, s, a, metric) for s in seeds]
        sb = [per_example(work, s, b, metric) for s in seeds]
        return {**paired(sa, sb), "metric": "base " + metric}

    comps = {"b1_vs_b0": cmp("remit-r1", "vanilla", "exact_match"),
             "r1_vs_r0": cmp("remit-r1", "vanilla", "exact_match", post=True),
             "rl_vs_sft_guided": cmp("remit-r1", "sft-guided", "exact_match"),
             "round2_vs_round1": cmp("remit-r2", "remit-r1", "exact_match")}
    bpb_comps = {k: cmp(a, b, "bpb") for k, (a, b) in {"b1_vs_b0": ("remit-r1", "vanilla"),
                                                        "rl_vs_sft_guided": ("remit-r1", "sft-guided"),
                                                        "round2_vs_round1": ("remit-r2", "remit-r1")}.items()}
    base_vs = {arm: cmp(arm, "vanilla", "exact_match") for arm in arms if arm != "vanilla"}
    eff = efficiency(work, seeds)
    if eff:
        plot(eff, results / "curves.png")
    try:
        commit = subprocess.check_output(["git", "rev-parse", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    heldout_n = len(sft[0]) if sft and sft[0] else 0
    summary = {"heldout_n": heldout_n, "seeds": seeds, **rl, "grpo_gain": gain["delta"], "grpo_gain_ci": gain["ci"],
               "grpo_gain_ci_per_seed": [c["ci"] for c in per_seed_ci], "grpo_frac_reward_zero_std": zero_std,
               "dpo_pairs": pairs, "arms": {k: {m: v[m] for m in ("base_acc", "post_acc", "bpb")}
                                             for k, v in arms.items()},
               **comps, "bpb": bpb_comps, "vs_vanilla_base_acc": base_vs,
               "sample_efficiency": {k: {m: v[m] for m in v if m != "curves"} for k, v in eff.items()},
               "command": command, "commit": commit}
    (results / "summary.json").write_text(json.dumps(summary, indent=1))
    (results / "results.md").write_text(_markdown(summary, arms))
    return results / "results.md"


def _markdown(s: dict, arms: dict) -> str:
    lines = [f"# Flywheel experiment in the chain world (issue #11): {len(s['seeds'])} seeds, "
             f"{s['heldout_n']} held-out tasks", "", f"Command: `{s['command']}` at commit `{s['commit']}`.", "",
             "## The RL stage (vanilla branch: SFT -> DPO -> GRPO)", "",
             "| seed | SFT acc | GRPO acc | gain (points, 95% CI) | GRPO groups with no reward spread | DPO pairs |",
             "|---|---|---|---|---|---|"]
    for i, seed in enumerate(s["seeds"]):
        lo, hi = s["grpo_gain_ci_per_seed"][i]
        z = s["grpo_frac_reward_zero_std"][i]
        lines.append(f"| {seed} | {100 * s['sft_acc'][i]:.1f}% | {100 * s['grpo_acc'][i]:.1f}% | "
                     f"{100 * (s['grpo_acc'][i] - s['sft_acc'][i]):+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | "
                     f"{'-' if z is None else f'{100 * z:.0f}%'} | {s['dpo_pairs'][i]} |")
    g = s["grpo_gain_ci"]
    lines += ["", f"Pooled: {100 * s['grpo_gain']:+.1f} points [{100 * g[0]:+.1f}, {100 * g[1]:+.1f}].", "",
              "## Arms (means over seeds)", "",
              "| arm | base acc | post-trained acc | gold bpb (lower is better) | base acc vs vanilla (points, 95% CI) |",
              "|---|---|---|---|---|"]
    for arm, v in arms.items():
        vs = s["vs_vanilla_base_acc"].get(arm)
        post = "-" if v["post_acc"] is None else f"{100 * v['post_acc']:.1f}%"
        lines.append(f"| {arm} | {100 * v['base_acc']:.1f}% | {post} | {v['bpb']:.4f} | "
                     f"{'-' if vs is None else _fmt(vs)} |")
    lines += ["", "## The one-table answer", "",
              "| question | metric | delta (95% CI) | bpb delta (95% CI; negative = better) |", "|---|---|---|---|"]
    names = {"b1_vs_b0": "Does B1 (ReMiT base) beat B0 (vanilla base)?",
             "r1_vs_r0": "Does R1 beat R0 (the gain survives post-training)?",
             "rl_vs_sft_guided": "Does RL guidance beat SFT guidance?",
             "round2_vs_round1": "Does round 2 add to round 1?"}
    for k, q in names.items():
        c = s[k]
        b = s["bpb"].get(k)
        lines.append(f"| {q} | {c['metric']} (points) | {_fmt(c)} | {'-' if b is None else _fmt(b, 1.0, 4)} |")
    lines += ["", "`*`: the 95% CI excludes 0. CIs: paired bootstrap over seeds and held-out tasks."]
    eff = s.get("sample_efficiency") or {}
    if eff:
        lines += ["", "## Sample efficiency (mean curves over seeds; curves.png)", ""]
        for key, v in eff.items():
            reach = v["remit_tokens_to_reach"]
            if not reach:
                tail = "ReMiT-r1 does not reach it within the run."
            elif reach >= v["vanilla_tokens"]:
                tail = "ReMiT-r1 reaches it only at the end of the run (no tokens saved)."
            else:
                tail = f"ReMiT-r1 reaches it after {reach} tokens ({v['ratio']:.2f}x fewer)."
            lines.append(f"- {key}: vanilla's final value {v['vanilla_final']:.4f} after {v['vanilla_tokens']} tokens; "
                         + tail)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--results", default="benchmarks/results/flywheel")
    a = ap.parse_args()
    print(analyze(Path(a.work), a.seeds, Path(a.results)))
