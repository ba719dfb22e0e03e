"""Gold bits per byte of every arm's base model, scored the same way for every seed (issue #11).

The world suite's gold bpb of the running experiment's first seeds was computed before the eval fix of
56777a3 (the delimiter), so the tables use this instead: remit's own scorer (``curve.score``: the worked
solution after ``Question: ...\\nAnswer:``, exactly the pre-training text). Writes ``<work>/gold_bpb.json``
with per-example bits and bytes, and the base accuracy measured in the same pass.

    python benchmarks/flywheel/gold_bpb.py runs/flywheel-exp --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analyze import ARMS
from curve import _rows, memo, score


def gold_bpb(work: Path, seeds: list[int]) -> Path:
    from remit.models import load_model, load_tokenizer

    out = work / "gold_bpb.json"

    def one(mid: Path, rows: list[dict]) -> dict:
        r = score(load_model(mid, device="cpu"), load_tokenizer(mid), rows)
        return {k: r[k] for k in ("acc", "bpb", "correct", "bits", "bytes")}

    for s in seeds:
        rows = _rows(work / f"seed{s}" / "world")
        for arm in ARMS:
            mid = work / f"seed{s}" / f"midtrain-{arm}"
            memo(out, f"seed{s}/{arm}", mid, lambda mid=mid, rows=rows: one(mid, rows))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    a = ap.parse_args()
    print(gold_bpb(Path(a.work), a.seeds))
