"""RHO-1 selective language modelling (baseline): train on the tokens of highest excess loss only."""

from __future__ import annotations

from remit.methods.base import Method
from remit.objectives.rho1 import Rho1

METHOD = Method(
    name="rho1", build=lambda cfg: Rho1(keep_ratio=cfg.method.keep_ratio), reference="logps", options=("keep_ratio",),
    stats={"kept_fraction": "share of counted tokens trained on",
           "excess_kept_mean": "mean excess loss (log p_ref - log p_model) of the kept tokens",
           "excess_kept_std": "its std"},
    label="rho1", help="keep the top keep_ratio tokens by excess loss over the reference")
