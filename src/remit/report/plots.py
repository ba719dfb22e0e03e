"""The report's figures (matplotlib, Agg backend): training curves, token-weight evolution, stage costs."""

from __future__ import annotations

import json
from pathlib import Path

from remit.errors import DataError


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metrics(path: str | Path) -> list[dict]:
    """``metrics.jsonl`` rows (a truncated last line, from a crash mid-write, is skipped)."""
    p = Path(path)
    rows = []
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise DataError(f"{p} line {i + 1}: invalid JSON") from None
    return rows


def _series(rows: list[dict], key: str, x: str = "step") -> tuple[list, list]:
    pts = [(r[x], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and isinstance(r.get(x), (int, float))]
    return [a for a, _ in pts], [b for _, b in pts]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def plot_training_curves(runs: dict[str, list[dict]], path: Path) -> Path:
    """Loss vs tokens (or steps) and learning rate vs step, one line per mid-training run.

    The plain next-token loss (``nll``) is plotted when every run logs it: the methods' own objectives
    (weighted, selected, distilled) are on different scales and would not compare.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.3))
    use_tokens = all(any("tokens" in r for r in rows) for rows in runs.values())
    key = "nll" if all(any("nll" in r for r in rows) for rows in runs.values()) else "loss"
    styles = ["-", "--", "-.", ":"]
    for i, (name, rows) in enumerate(runs.items()):  # line styles keep overlapping curves visible
        ls = styles[i % len(styles)]
        ax1.plot(*_series(rows, key, "tokens" if use_tokens else "step"), label=name, lw=1.4, ls=ls)
        ax2.plot(*_series(rows, "lr"), label=name, lw=1.4, ls=ls)
    ax1.set_xlabel("training tokens" if use_tokens else "step")
    ax1.set_ylabel("next-token loss (nats/token)" if key == "nll" else "training objective (nats/token)")
    ax1.set_title("Mid-training loss (plain NTP, unweighted)" if key == "nll" else "Mid-training objective")
    ax2.set_xlabel("step")
    ax2.set_ylabel("learning rate")
    ax2.set_title("Learning-rate schedule")
    ax2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def hist_matrix(rows: list[dict], epsilon: float):
    """(steps, [n_bins, n_steps] fraction per bin, bin edges) from ``w_hist`` (a list of counts over
    equal bins on ``w_hist_range`` when logged, else [1 - eps, 1 + eps]; or ``{"edges": [...], "counts": [...]}``)."""
    import numpy as np

    steps, cols, edges = [], [], None
    for r in rows:
        h = r.get("w_hist")
        if h is None:
            continue
        counts = h.get("counts") if isinstance(h, dict) else h
        if isinstance(h, dict) and h.get("edges") is not None:
            edges = np.asarray(h["edges"], dtype=float)
        c = np.asarray(counts, dtype=float)
        if r.get("w_hist_range") is not None:  # logged with the counts (remit.objectives.stats.histogram)
            lo, hi = r["w_hist_range"]
            edges = np.linspace(lo, hi, len(c) + 1)
        if cols and len(c) != len(cols[0]):
            raise DataError(f"w_hist at step {r.get('step')} has {len(c)} bins, earlier steps {len(cols[0])}")
        cols.append(c / max(c.sum(), 1.0))
        steps.append(r.get("step", len(steps)))
    if not cols:
        return None
    if edges is None:
        edges = np.linspace(1 - epsilon, 1 + epsilon, len(cols[0]) + 1)
    return np.asarray(steps), np.stack(cols, axis=1), edges


def plot_weight_evolution(runs: dict[str, tuple[list[dict], float]], path: Path) -> Path | None:
    """Per weighted run: the weight histogram as a heat-map over steps, and mean/std/clip fractions."""
    plt = _plt()
    mats = {name: (hist_matrix(rows, eps), rows) for name, (rows, eps) in runs.items()}
    mats = {k: v for k, v in mats.items() if v[0] is not None}
    if not mats:
        return None
    fig, axes = plt.subplots(len(mats), 2, figsize=(13, 3.8 * len(mats)), squeeze=False)
    for (name, ((steps, mat, edges), rows)), (ax1, ax2) in zip(mats.items(), axes):
        x0, x1 = (steps[0], steps[-1]) if len(steps) > 1 else (steps[0] - 0.5, steps[0] + 0.5)
        im = ax1.imshow(mat, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                        extent=[x0, x1, edges[0], edges[-1]])
        cb = fig.colorbar(im, ax=ax1)
        cb.set_label("fraction of tokens in bin")
        ax1.set_xlabel("step")
        ax1.set_ylabel("token weight w")
        ax1.set_title(f"{name}: distribution of token weights over training")
        s, m = _series(rows, "w_mean")
        _, sd = _series(rows, "w_std")
        ax2.plot(s, m, label="mean w", color="C0")
        if len(sd) == len(m):
            ax2.fill_between(s, [a - b for a, b in zip(m, sd)], [a + b for a, b in zip(m, sd)], color="C0",
                             alpha=0.2, label="mean ± std")
        ax2.set_xlabel("step")
        ax2.set_ylabel("weight")
        ax3 = ax2.twinx()
        for key, lab, col in (("w_frac_hi", "fraction at 1 + eps", "C3"), ("w_frac_lo", "fraction at 1 - eps", "C2")):
            ax3.plot(*_series(rows, key), label=lab, color=col, ls="--")
        ax3.set_ylabel("fraction of tokens clipped")
        h1, l1 = ax2.get_legend_handles_labels()
        h2, l2 = ax3.get_legend_handles_labels()
        ax2.legend(h1 + h2, l1 + l2, fontsize=8, loc="best")
        ax2.set_title(f"{name}: weight mean/std and clip fractions")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_stage_costs(stages: list[dict], path: Path) -> Path | None:
    """Wall time per stage (bars), annotated with tokens/s where known."""
    rows = [s for s in stages if isinstance(s.get("wall_s"), (int, float))]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.4))
    y = range(len(rows))
    ax.barh(list(y), [r["wall_s"] for r in rows], color="C0")
    for i, r in enumerate(rows):
        tps = r.get("tokens_per_s")
        note = f"{r['wall_s']:.0f} s" + (f", {tps:,.0f} tok/s" if isinstance(tps, (int, float)) else "")
        ax.annotate(note, (r["wall_s"], i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(list(y), [r["name"] for r in rows], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("wall time (s)")
    ax.set_title("Wall time per stage")
    ax.set_xlim(0, max(r["wall_s"] for r in rows) * 1.35 or 1)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
