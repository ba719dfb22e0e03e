"""`remit stats`: the seed-level reading of every per-seed contrast in one or more JSON files.

    remit stats benchmarks/results/flywheel/summary.json [out=DIR] [confidence=0.95] [alpha=0.05]

Any mapping in the files that holds a ``per_seed`` list (one treatment - baseline difference per seed; a
mapping whose ``delta`` is not the mean of its ``per_seed``, and an ``arms`` mapping, hold levels and are
skipped; a stored ``unit`` (points | raw) is honoured; as
``remit experiment``-style summaries and the committed benchmark results write them) becomes one row: the
mean, the paired t interval over seeds (the headline, :func:`remit.eval.stats.seed_t`), its two-sided p,
the between-seed standard deviation, the minimum effect the seeds at hand detect with 80% power, and the
Holm-adjusted p over all rows of the run (an unordered family). A ``ci`` stored next to ``per_seed`` (for
example an older percentile bootstrap) is shown beside it for comparison. Values whose path mentions
neither ``bpb`` nor ``margin`` and that lie in [-1, 1] are shown in points (x100).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.config import check_range
from remit.errors import ConfigError, DataError
from remit.eval import stats
from remit.utils.io import atomic_write_json, atomic_write_text


@dataclass
class SeedStatsConfig:
    files: list[str] = field(default_factory=list)  # JSON files holding `per_seed` lists
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8
    out: str = ""  # optional folder for stats.json / stats.md (default: print only)

    def validate(self) -> None:
        if not self.files:
            raise ConfigError("files: give at least one JSON file, e.g. remit stats benchmarks/results/flywheel/summary.json")
        check_range("confidence", self.confidence, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("alpha", self.alpha, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("power", self.power, 0.0, 1.0, lo_open=True, hi_open=True)


def find_contrasts(obj: Any, path: str = "") -> list[tuple[str, dict]]:
    """Every mapping under ``obj`` with a numeric ``per_seed`` list of differences, as (dotted path, mapping).

    Skipped: an ``arms`` mapping (per-seed levels of each arm, as `remit experiment` writes them) and any
    mapping whose ``delta`` is not the mean of its ``per_seed`` (levels, not differences)."""
    found: list[tuple[str, dict]] = []
    if isinstance(obj, dict):
        ps = obj.get("per_seed")
        if isinstance(ps, list) and len(ps) >= 2 and all(isinstance(v, (int, float)) for v in ps):
            delta = obj.get("delta")
            # A mapping whose `delta` is not the mean of its `per_seed` holds per-seed levels, not differences.
            if not isinstance(delta, (int, float)) or abs(sum(ps) / len(ps) - delta) <= 1e-6 * max(1.0, abs(delta)):
                found.append((path or "(top)", obj))
        for k, v in obj.items():
            if k not in ("per_seed", "arms"):
                found += find_contrasts(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += find_contrasts(v, f"{path}[{i}]")
    return found


def _points(path: str, values: list[float]) -> bool:
    low = path.lower()
    return "bpb" not in low and "margin" not in low and all(-1.0 <= v <= 1.0 for v in values)


def analyse(files: list[str | Path], *, confidence: float = 0.95, alpha: float = 0.05, power: float = 0.8) -> dict:
    rows = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise DataError(f"{p}: no such file")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{p}: not valid JSON ({e})") from None
        seen: set[int] = set()
        for path, entry in find_contrasts(data):
            if id(entry) in seen:  # one mapping reached twice counts once
                continue
            seen.add(id(entry))
            vals = [float(v) for v in entry["per_seed"]]
            unit = entry.get("unit")
            k = 1.0 if unit in ("points", "raw") else 100.0 if _points(path, vals) else 1.0
            est = stats.seed_t([v * k for v in vals], confidence=confidence)
            old = entry.get("ci")
            rows.append({
                "file": str(p), "contrast": path,
                "unit": unit if unit in ("points", "raw") else "points" if k == 100.0 else "raw", "n_seeds": len(vals),
                "per_seed": [v * k for v in vals], "mean": est.mean, "ci": [est.lo, est.hi], "p": est.p, "sd": est.sd,
                "mde": stats.mde(len(vals), est.sd or 0.0, alpha=alpha, power=power) if est.sd else float("nan"),
                "stored_ci": [v * k for v in old] if isinstance(old, list) and len(old) == 2 else None,
                "significant": est.significant,
            })
    if not rows:
        raise DataError(f"no `per_seed` list (>= 2 seeds) found in {', '.join(map(str, files))}")
    for r, h in zip(rows, stats.holm([r["p"] if r["p"] is not None else 1.0 for r in rows], alpha=alpha)):
        r["p_holm"] = h["p_holm"]
    n_min = min(r["n_seeds"] for r in rows)
    return {"confidence": confidence, "alpha": alpha, "power": power, "rows": rows,
            "min_sign_test_p": stats.min_sign_test_p(n_min), "test": "paired t over seeds (n - 1 df)"}


def _f(v: float | None, nd: int) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{nd}f}"


def to_markdown(res: dict) -> str:
    c = int(res["confidence"] * 100)
    lines = [f"Seed-level reading: {res['test']}; {c}% t interval; p two-sided; MDE = the smallest true difference "
             f"detected with {int(res['power'] * 100)}% power at alpha {res['alpha']} given the seeds' spread; "
             f"p (Holm) over all {len(res['rows'])} rows. With these seeds no sign or Wilcoxon test can reach "
             f"p < {res['min_sign_test_p']:.4g}.", "",
             f"| contrast | unit | seeds | per seed | mean | {c}% t CI | p | p (Holm) | seed sd | MDE | stored CI |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        nd = 2 if r["unit"] == "points" else 4
        per = ", ".join(f"{v:+.{nd}f}" for v in r["per_seed"])
        star = " *" if r["significant"] else ""
        stored = f"[{_f(r['stored_ci'][0], nd)}, {_f(r['stored_ci'][1], nd)}]" if r["stored_ci"] else "-"
        sd = "-" if r["sd"] is None else f"{r['sd']:.{nd}f}"
        mde = "-" if math.isnan(r["mde"]) else f"{r['mde']:.{nd}f}"
        p = "-" if r["p"] is None else f"{r['p']:.3g}"
        lines.append(f"| {Path(r['file']).name}: {r['contrast']} | {r['unit']} | {r['n_seeds']} | {per} | "
                     f"{_f(r['mean'], nd)} | [{_f(r['ci'][0], nd)}, {_f(r['ci'][1], nd)}]{star} | {p} | "
                     f"{r['p_holm']:.3g} | {sd} | {mde} | {stored} |")
    lines.append(f"\n`*`: the {c}% seed-level t interval excludes 0 (two-sided p < {1 - res['confidence']:.2g}), "
                 "before any correction for the number of rows.")
    return "\n".join(lines) + "\n"


def run(cfg: SeedStatsConfig) -> Path:
    res = analyse(cfg.files, confidence=cfg.confidence, alpha=cfg.alpha, power=cfg.power)
    text = to_markdown(res)
    print(text)
    if not cfg.out:
        return Path(cfg.files[0]).parent
    out = Path(cfg.out)
    atomic_write_json(out / "stats.json", res)
    atomic_write_text(out / "stats.md", text)
    return out
