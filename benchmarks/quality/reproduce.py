"""Does a rerun reproduce the committed table? Compares two ``results.json`` written by ``analyze.py``.

    python benchmarks/quality/reproduce.py benchmarks/results/quality/results.json runs/quality-rerun/results/results.json

For every table cell (model x metric, before and after post-training) it compares the mean over seeds of the
two runs with the seed variation the table states (the larger of the two standard deviations over seeds).
A cell reproduces when ``|mean_a - mean_b| <= tol * std`` (``--tol``, default 1), or when both means agree to
``--atol`` (cells whose std is 0: the shared pre-annealing model, accuracies at chance). The paired deltas to
vanilla are compared the same way, against the half-width of their 95% CI. Exit status 1 if a cell does not
reproduce, so the check can gate a script. Bit-identical runs (same machine, same threads) show 0 everywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def compare(a: dict[str, Any], b: dict[str, Any], *, tol: float = 1.0, atol: float = 1e-9) -> dict[str, Any]:
    """Cell-by-cell comparison of two analyze.py results: counts, worst cells and the cells that differ."""
    cells, bad, identical, worst = 0, [], 0, (0.0, "")
    missing = []
    for tname in ("base", "post"):
        ta, tb = (a.get("tables") or {}).get(tname) or {}, (b.get("tables") or {}).get(tname) or {}
        for model in sorted(set(ta) | set(tb)):
            if model not in ta or model not in tb:
                missing.append(f"{tname}/{model}")
                continue
            for metric, ca in ta[model].items():
                cb = tb[model].get(metric)
                if not isinstance(ca, dict) or not isinstance(cb, dict):
                    continue
                checks = [("mean", ca["mean"], cb["mean"], max(ca.get("std", 0.0), cb.get("std", 0.0)))]
                if "delta" in ca and "delta" in cb:
                    half = max((ca["ci"][1] - ca["ci"][0]) / 2, (cb["ci"][1] - cb["ci"][0]) / 2)
                    checks.append(("delta", ca["delta"], cb["delta"], half))
                for what, x, y, scale in checks:
                    cells += 1
                    diff = abs(x - y)
                    identical += diff == 0.0
                    where = f"{tname}/{model}/{metric}/{what}"
                    ratio = diff / scale if scale > 0 else (0.0 if diff <= atol else float("inf"))
                    if ratio > worst[0]:
                        worst = (ratio, where)
                    if diff > atol and diff > tol * scale:
                        bad.append({"cell": where, "a": x, "b": y, "diff": diff, "allowed": tol * scale})
    return {"cells": cells, "identical": identical, "worst_ratio": worst[0], "worst_cell": worst[1],
            "not_reproduced": bad, "missing": missing, "ok": not bad and not missing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--tol", type=float, default=1.0, help="allowed difference in units of the seed std / CI half-width")
    ap.add_argument("--atol", type=float, default=1e-9)
    args = ap.parse_args()
    res = []
    for p in (args.a, args.b):
        try:
            res.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"error: {p}: cannot read results ({e})") from None
    r = compare(res[0], res[1], tol=args.tol, atol=args.atol)
    print(f"{r['cells']} cells compared, {r['identical']} bit-identical; largest difference "
          f"{r['worst_ratio']:.3g} x the stated variation ({r['worst_cell'] or '-'})")
    for m in r["missing"]:
        print(f"MISSING in one run: {m}")
    for c in r["not_reproduced"]:
        print(f"NOT REPRODUCED {c['cell']}: {c['a']:.5g} vs {c['b']:.5g} (|diff| {c['diff']:.3g} > {c['allowed']:.3g})")
    print("reproduced within the stated seed variation" if r["ok"] else "NOT reproduced")
    sys.exit(0 if r["ok"] else 1)


if __name__ == "__main__":
    main()
