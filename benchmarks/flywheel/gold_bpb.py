"""Gold bits per byte of every arm's base model, scored the same way for every seed (issue #11).

The world suite's gold bpb of the running experiment's first seeds was computed before the eval fix of
56777a3 (the delimiter), so the tables use this instead: remit's own scorer (``curve.score``: the worked
solution after ``Question: ...\\nAnswer:``, exactly the pre-training text). Writes ``<work>/gold_bpb.json``
with per-example bits and bytes, and the base accuracy measured in the same pass.

    python benchmarks/flywheel/gold_bpb.py runs/flywheel-exp --seeds 0 1 2 3 4
"""

from __future__ import annotations

from pathlib import Path

from analyze import ARMS
from curve import cli, per_arm, score


def _score_arm(mid: Path, rows: list[dict]) -> dict:
    from remit.models import load_model, load_tokenizer

    r = score(load_model(mid, device="cpu"), load_tokenizer(mid), rows)
    return {k: r[k] for k in ("acc", "bpb", "correct", "bits", "bytes")}


def gold_bpb(work: Path, seeds: list[int]) -> Path:
    return per_arm(work, seeds, ARMS, work / "gold_bpb.json", _score_arm)


if __name__ == "__main__":
    cli(gold_bpb)
