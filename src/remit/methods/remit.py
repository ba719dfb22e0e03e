"""ReMiT: next-token prediction re-weighted per token by the frozen RL model (docs/method.md).

``method.frozen_base=true``: delta uses the frozen starting checkpoint instead of the live model
(the run builder then loads ``model.path``, or ``reference.base_cache``, as the base).
"""

from __future__ import annotations

from remit.methods.base import Method
from remit.objectives.remit import ReMiT


def build(cfg) -> ReMiT:
    m = cfg.method
    return ReMiT(epsilon=m.epsilon, temperature=m.temperature, per_document=m.per_document, normalize=m.normalize,
                 hist_bins=cfg.logging.hist_bins)


METHOD = Method(
    name="remit", build=build, reference="logps", role="remit",
    options=("epsilon", "temperature", "per_document", "normalize", "frozen_base"),
    stats={"w_mean": "mean token weight", "w_std": "std of the token weights",
           "w_frac_hi": "share of tokens at the upper clip 1 + eps", "w_frac_lo": "share at the lower clip 1 - eps",
           "w_hist": "token weights per bin over [1 - eps, 1 + eps]", "w_hist_range": "the bins' bounds",
           "delta_mean": "mean of log p_ref - log p_model (before centring)", "delta_std": "its std"},
    help="tokens the reference predicts better than the model (after centring) weigh more, in [1 - eps, 1 + eps]")
