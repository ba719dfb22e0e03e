"""Results table and the "did ReMiT beat vanilla" verdict, from eval ``results.json`` files.

Each task is scored by one primary metric (the first of ``METRIC_PREFERENCE`` it has, else its
first metric). A model is compared with its baseline by a paired bootstrap over the per-example
values (same examples, same order; :func:`remit.eval.stats.paired_bootstrap`, the one ``remit compare``
uses, so the two agree; the unit is the example, so this describes one run, not a seed-level claim); without per-example values, by a normal
approximation from the two stderrs. The average over tasks is of the "gain" (the delta, sign-flipped for metrics
where lower is better), and its CI comes from averaging the per-task bootstrap draws.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from remit.errors import DataError
from remit.eval import stats

METRIC_PREFERENCE = ("exact_match", "pass@1", "acc_norm", "acc", "f1", "em")
LOWER_IS_BETTER = ("perplexity", "ppl", "loss", "bits_per_byte", "bpb", "nll")


def load_results(path: str | Path) -> dict:
    """``results.json`` (or a folder holding it); a malformed file raises DataError naming it."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise DataError(f"eval results not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{p} line {e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data.get("tasks"), dict):
        raise DataError(f"{p}: no 'tasks' mapping (expected {{'tasks': {{task: {{metric: {{'value': ...}}}}}}}})")
    return data


def primary_metric(metrics: dict) -> str:
    for pref in METRIC_PREFERENCE:
        for name in metrics:
            if name == pref or name.split(",")[0] == pref:
                return name
    return next(iter(metrics))


def lower_is_better(metric: str) -> bool:
    base = metric.split(",")[0].lower()
    return any(k in base for k in LOWER_IS_BETTER)


def _value(entry) -> float | None:
    v = entry.get("value") if isinstance(entry, dict) else entry
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def scale(metric: str, values: list[float]) -> float:
    """Show bounded higher-is-better metrics (accuracies) in points (x100)."""
    return 100.0 if not lower_is_better(metric) and values and all(0.0 <= v <= 1.0 for v in values) else 1.0


@dataclass
class Delta:
    task: str
    metric: str
    value: float          # model's score (scaled)
    base: float           # baseline's score (scaled)
    delta: float          # value - base (scaled)
    lo: float             # CI of the delta
    hi: float
    p: float | None       # two-sided bootstrap p-value (None: normal approximation unavailable)
    n: int | None
    paired: bool
    gain_draws: np.ndarray | None = None  # bootstrap draws of the gain, for the average over tasks
    se: float | None = None  # normal approximation: standard error of the delta (then lo/hi = delta -/+ z se)

    @property
    def significant(self) -> bool:
        return self.lo > 0 or self.hi < 0


def compare_task(res: dict, base: dict, task: str, *, n_boot: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> Delta | None:
    """The delta of one task's primary metric (None when either side lacks it)."""
    if task not in res["tasks"] or task not in base["tasks"]:
        return None
    metric = primary_metric(res["tasks"][task])
    va, vb = _value(res["tasks"][task].get(metric)), _value(base["tasks"][task].get(metric))
    if va is None or vb is None:
        return None
    k = scale(metric, [va, vb])
    sign = -1.0 if lower_is_better(metric) else 1.0
    pa = (res.get("per_example") or {}).get(task, {}).get(metric)
    pb = (base.get("per_example") or {}).get(task, {}).get(metric)
    if pa and pb and len(pa) == len(pb) and len(pa) > 1:
        xa, xb = np.asarray(pa, dtype=np.float64) * k, np.asarray(pb, dtype=np.float64) * k
        # One bootstrap (remit.eval.stats) for the CI, the p-value and the draws, the same as `remit compare`'s.
        est, draws = stats.paired_bootstrap(xb, xa, n_boot=n_boot, seed=seed, confidence=confidence)
        shift = (va - vb) * k - est.mean  # centre on the reported delta if value != mean(per_example)
        moved = draws + shift  # the p-value from the same (shifted) draws as the interval
        p = est.p if shift == 0 else min(1.0, 2 * min(float((moved <= 0).mean()), float((moved >= 0).mean())))
        return Delta(task, metric, va * k, vb * k, va * k - vb * k, est.lo + shift, est.hi + shift, p, len(pa),
                     True, sign * moved)
    sa = (res["tasks"][task][metric] or {}).get("stderr") if isinstance(res["tasks"][task][metric], dict) else None
    sb = (base["tasks"][task][metric] or {}).get("stderr") if isinstance(base["tasks"][task][metric], dict) else None
    d = (va - vb) * k
    if isinstance(sa, (int, float)) and isinstance(sb, (int, float)):
        se = math.hypot(sa, sb) * k
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        p = 2 * (1 - NormalDist().cdf(abs(d) / se)) if se > 0 else (0.0 if d else 1.0)
        draws = sign * np.random.default_rng(seed).normal(d, se, size=n_boot) if se > 0 else None
        return Delta(task, metric, va * k, vb * k, d, d - z * se, d + z * se, p, None, False, draws, se)
    return Delta(task, metric, va * k, vb * k, d, float("nan"), float("nan"), None, None, False, None)


def average_gain(deltas: list[Delta], *, confidence: float = 0.95) -> dict | None:
    """Mean gain over tasks with its CI (None when no task could be compared)."""
    if not deltas:
        return None
    gains = [(-d.delta if lower_is_better(d.metric) else d.delta) for d in deltas]
    out = {"gain": float(np.mean(gains)), "n_tasks": len(deltas), "lo": float("nan"), "hi": float("nan"), "p": None}
    draws = [d.gain_draws for d in deltas]
    if all(d.se is not None and d.se > 0 for d in deltas):
        # Normal approximations only: the exact CI of the mean, so that one task's verdict and its table
        # cell (d -/+ z se) agree instead of differing by the noise of random draws.

        se = math.sqrt(sum(d.se ** 2 for d in deltas)) / len(deltas)
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        g = out["gain"]
        out["lo"], out["hi"] = g - z * se, g + z * se
        out["p"] = 2 * (1 - NormalDist().cdf(abs(g) / se))
    elif all(x is not None for x in draws):
        n = min(len(x) for x in draws)
        mean_draws = np.mean([x[:n] for x in draws], axis=0)
        q = (1 - confidence) / 2
        out["lo"], out["hi"] = (float(v) for v in np.quantile(mean_draws, [q, 1 - q]))
        out["p"] = float(min(1.0, 2 * min((mean_draws <= 0).mean(), (mean_draws >= 0).mean())))
    return out


def compare_models(res: dict, base: dict, **kw) -> list[Delta]:
    return [d for t in res["tasks"] if (d := compare_task(res, base, t, **kw)) is not None]


def fmt_p(p: float, n_boot: int) -> str:
    """A bootstrap p-value of 0 only means "below the resolution of n_boot draws"."""
    return f"p < {2 / n_boot:.2g}" if p <= 0 else f"p = {p:.3g}"


def verdict(name: str, base_name: str, avg: dict | None, deltas: list[Delta], *, confidence: float = 0.95,
            n_boot: int = 2000) -> str:
    """One plain sentence, computed from the numbers."""
    if avg is None:
        return f"Not available: no task was evaluated for both {name} and {base_name}."
    g, lo, hi, p = avg["gain"], avg["lo"], avg["hi"], avg["p"]
    has_ci = not (math.isnan(lo) or math.isnan(hi))
    sig = has_ci and (lo > 0 or hi < 0)
    f = num_format([g, lo, hi])
    ci = f"{int(confidence * 100)}% CI [{lo:{f}}, {hi:{f}}]" + (f", {fmt_p(p, n_boot)}" if p is not None else "") \
        if has_ci else "no confidence interval available"
    wins = sum(1 for d in deltas if d.significant and (d.delta < 0) == lower_is_better(d.metric))
    losses = sum(1 for d in deltas if d.significant and (d.delta < 0) != lower_is_better(d.metric))
    tasks = f"significant per-task wins/losses: {wins}/{losses} of {len(deltas)} tasks"
    metrics = sorted({d.metric for d in deltas})
    lower = ""
    if deltas and all(lower_is_better(m) for m in metrics):  # say it in the metric's own direction
        lower = (f" ({'/'.join(metrics)}: lower is better; {name}'s is {abs(g):{f.lstrip('+')}} "
                 f"{'lower' if g > 0 else 'higher' if g < 0 else 'the same'} on average)")
    body = f"{name} vs {base_name}: average gain {g:{f}}{lower} over {avg['n_tasks']} task(s) ({ci}); {tasks}."
    if not has_ci:
        where = "ahead of" if g > 0 else "behind" if g < 0 else "level with"
        return f"Unknown significance: {name} is {where} {base_name}, without a confidence interval. {body}"
    if g > 0 and sig:
        return f"Yes, {name} beat {base_name} in this run, significantly. {body}"
    if g > 0:
        return f"Not significantly: {name} is ahead of {base_name} but the interval includes 0. {body}"
    if sig:
        return f"No, {name} did not beat {base_name} in this run: it is significantly behind. {body}"
    return f"No, {name} did not beat {base_name} in this run (the difference is not significant). {body}"


def num_format(values: list[float]) -> str:
    """``+.2f``, or ``+.3f`` / ``+.4f`` when every value is small (bpb differences of a few thousandths)."""
    finite = [abs(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    top = max(finite, default=1.0)
    return "+.2f" if top >= 0.5 else "+.3f" if top >= 0.05 else "+.4f"


def fmt_cell(d: Delta | None, value: float | None) -> str:
    if d is None:
        return "—" if value is None else f"{value:.2f}"
    f = num_format([d.delta, d.lo, d.hi])
    v = f"{d.value:{f.lstrip('+')}}"
    if math.isnan(d.lo):
        return f"{v} ({d.delta:{f}})"
    star = "*" if d.significant else ""
    return f"{v} ({d.delta:{f}} [{d.lo:{f}}, {d.hi:{f}}]{star})"


def task_value(res: dict, task: str) -> float | None:
    if task not in res["tasks"]:
        return None
    metric = primary_metric(res["tasks"][task])
    v = _value(res["tasks"][task].get(metric))
    return None if v is None else v * scale(metric, [v])
