"""The ReMiT placebo (``method.name=remit_placebo``): ReMiT's weights shuffled within each row.

A control arm for experiments (``baselines: [remit_placebo]`` in a flywheel, guided by R0 like ReMiT):
the same weight distribution and cost as ReMiT, without the information of which token the reference
prefers. See :mod:`remit.objectives.placebo`.
"""

from __future__ import annotations

from remit.methods.base import Method
from remit.methods.remit import METHOD as REMIT
from remit.objectives.placebo import ReMiTPlacebo


def build(cfg) -> ReMiTPlacebo:
    m = cfg.method
    return ReMiTPlacebo(epsilon=m.epsilon, temperature=m.temperature, per_document=m.per_document,
                        normalize=m.normalize, hist_bins=cfg.logging.hist_bins)


METHOD = Method(
    name="remit_placebo", build=build, reference="logps", role="baseline", options=REMIT.options, stats=REMIT.stats,
    help="ReMiT's token weights shuffled within each row: same weights, no information on which token gets them")
