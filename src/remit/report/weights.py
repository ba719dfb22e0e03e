"""The "Token weights during training" section: weight histograms over training and every method's statistics.

Reads each mid-training stage's ``metrics.jsonl``: what a line holds beyond the core fields
(``CORE_METRICS``) is the method's own statistics (``remit.objectives.stats.summarize``); their
descriptions come from the method table (``Method.stats``), so a plugin's method is shown like a
built-in one.
"""

from __future__ import annotations

from pathlib import Path

from remit.manifest import read_manifest
from remit.methods.registry import find_method
from remit.report import plots
from remit.report.sections import NA, _f, _midtrain_stages, _stage_name, stage_epsilon

# What every training run logs; the rest of a metrics.jsonl line is the method's own statistics.
CORE_METRICS = {"step", "tokens", "loss", "nll", "lr", "grad_norm", "tokens_per_s",
                "mfu", "peak_mem_gib", "max_rss_gib"}  # the resources of remit.midtrain.metrics, not the method's


def method_stats(stage: dict) -> tuple[str | None, dict[str, str]]:
    """(method name, {metric: description}) of a mid-training stage, from its manifest and the method table."""
    name = stage.get("method") or (read_manifest(stage["path"]) or {}).get("method")
    method = find_method(name) if name else None
    return name, dict(method.stats) if method is not None else {}


def weights_section(run, cfg, out):
    """Weight histograms over training (methods that log ``w_hist``) and every method's own statistics."""
    runs, table, numbers = {}, [], {}
    for name, st in _midtrain_stages(run).items():
        f = Path(st["path"]) / "metrics.jsonl"
        rows = plots.read_metrics(f) if f.is_file() else []
        label = _stage_name(name, st)
        method, described = method_stats(st)
        logged = [r for r in rows if set(r) - CORE_METRICS]
        weighted = [r for r in logged if "w_hist" in r or "w_mean" in r]
        if weighted:
            runs[label] = (weighted, stage_epsilon(st))
        if not logged:
            continue
        first, last = logged[0], logged[-1]
        keys = [k for k in dict.fromkeys([*described, *last]) if k not in CORE_METRICS and k in last]
        numbers[label] = {"method": method, "first_step": first.get("step"), "last_step": last.get("step"),
                          "first": {k: first.get(k) for k in keys}, "last": {k: last.get(k) for k in keys}}
        for k in keys:
            table.append([label, method or "", k, _stat(first.get(k)), _stat(last.get(k)), described.get(k, "")])
    if not table:
        return [("p", f"{NA}: no mid-training run logged statistics of its method.")], {}
    blocks = []
    path = plots.plot_weight_evolution(runs, out / "weights_over_training.png") if runs else None
    if path is not None:
        blocks.append(("img", path, "Left: share of tokens per weight bin at each logged step. Right: mean ± std "
                                    "of the weights and the fractions clipped at the bounds."))
    blocks += [("table", ["run", "method", "statistic", "first logged step", "last logged step", "what it is"], table),
               ("p", "Statistics over the counted tokens of every micro-batch and process of a logged step; "
                     "descriptions come from the method table (remit.methods).")]
    return blocks, numbers


def _stat(x) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_stat(v) for v in x) + "]" if len(x) <= 4 else f"{len(x)} bins, {int(sum(x))} tokens"
    return _f(x) if isinstance(x, float) else str(x) if x is not None else "n/a"
