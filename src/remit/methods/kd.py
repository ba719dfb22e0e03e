"""Token-level knowledge distillation from the reference (baseline): needs its full distributions."""

from __future__ import annotations

from remit.methods.base import Method
from remit.objectives.kd import KD


def build(cfg) -> KD:
    return KD(alpha=cfg.method.alpha, temperature=cfg.method.kd_temperature, chunk_size=cfg.reference.chunk_size)


METHOD = Method(
    name="kd", build=build, reference="logits", options=("alpha", "kd_temperature"),
    stats={"ce_mean": "next-token loss per token (the hard term)",
           "soft_ce_mean": "cross-entropy to the reference's distribution per token (the soft term)"},
    reference_why="KD needs full distributions, a log-prob cache is not enough",
    help="(1 - alpha) next-token loss + alpha cross-entropy to the reference's softened distribution")
