"""A mid-training method from OUTSIDE the remit package, as a user would write one (used by test_plugin.py).

Position decay: the token at position t of a row of length T weighs ``decay ** (t / (T - 1))``, so the
first tokens of a row count fully and the last ones ``decay``. Importing this module registers it:

    remit --plugin posdecay_plugin midtrain method.name=posdecay method.params={decay: 0.5} ...
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from remit.methods import Method, register_method
from remit.objectives.base import Objective, ObjectiveInputs, ObjectiveOutput, as_bool_mask, count, masked_nll_sum
from remit.objectives.stats import histogram, moments


def position_weights(shape: tuple[int, int], decay: float) -> torch.Tensor:
    b, t = shape
    return (decay ** (torch.arange(t, dtype=torch.float32) / max(t - 1, 1))).expand(b, t)


@dataclass
class PositionDecay(Objective):
    decay: float = 0.5
    bins: int = 10

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveOutput:
        mask = as_bool_mask(inputs.mask, inputs.policy_logps)
        w = position_weights(tuple(mask.shape), self.decay).to(inputs.policy_logps.device)
        stats = {**moments("w", w, mask), **histogram("w_hist", w, mask, lo=self.decay, hi=1.0, bins=self.bins)} \
            if inputs.want_stats else {}
        return ObjectiveOutput(masked_nll_sum(inputs.policy_logps, mask, w), count(mask), stats)


METHOD = register_method(Method(
    name="posdecay",
    build=lambda cfg: PositionDecay(decay=float(cfg.method.param("decay")), bins=cfg.logging.hist_bins),
    params={"decay": 0.5},
    stats={"w_mean": "mean position weight (closed form: the mean of decay^(t/(T-1)))",
           "w_hist": "position weights per bin over [decay, 1]"},
    help="earlier tokens of a row weigh more",
))
