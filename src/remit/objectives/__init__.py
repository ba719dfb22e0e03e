"""Token objectives as pure functions of tensors: log-probs, ReMiT weights, NTP / ReMiT / RHO-1 / KD, MiniPLM.

    from remit.objectives import token_logps, remit_weights, ReMiT, ObjectiveInputs
    logps = token_logps(logits, labels)                   # [B, T] fp32, chunked, never [N, V] fp32
    out = ReMiT(epsilon=0.2)(ObjectiveInputs(logps, labels != -100, ref_logps=ref_logps))

Modules: ``logprobs`` (chunked log-probs), ``base`` (inputs/outputs, NTP), ``remit`` (weights, ReMiT,
``weight_stats``), ``rho1``, ``kd``, ``miniplm``, ``stats`` (summable statistics, ``summarize``). Names are re-exported lazily so that importing the
package does not import torch (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remit.utils.lazy import lazy_exports

_EXPORTS = {
    "token_logps": "logprobs",
    "token_logps_from_hidden": "logprobs",
    "ObjectiveInputs": "base",
    "ObjectiveOutput": "base",
    "Objective": "base",
    "NTP": "base",
    "remit_weights": "remit",
    "remit_weights_and_delta": "remit",
    "center_delta": "remit",
    "weight_stats": "remit",
    "ReMiT": "remit",
    "Rho1": "rho1",
    "KD": "kd",
    "soft_cross_entropy": "kd",
    "miniplm_scores": "miniplm",
    "select_top": "miniplm",
    "document_mean_losses": "miniplm",
    "summarize": "stats",
}

__all__ = [
    "KD", "NTP", "Objective", "center_delta", "ObjectiveInputs", "ObjectiveOutput", "ReMiT", "Rho1", "document_mean_losses",
    "miniplm_scores", "remit_weights", "remit_weights_and_delta", "select_top", "soft_cross_entropy",
    "summarize", "token_logps", "token_logps_from_hidden", "weight_stats",
]
assert sorted(__all__) == sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from remit.objectives.base import NTP, Objective, ObjectiveInputs, ObjectiveOutput
    from remit.objectives.kd import KD, soft_cross_entropy
    from remit.objectives.logprobs import token_logps, token_logps_from_hidden
    from remit.objectives.miniplm import document_mean_losses, miniplm_scores, select_top
    from remit.objectives.remit import ReMiT, center_delta, remit_weights, remit_weights_and_delta, weight_stats
    from remit.objectives.rho1 import Rho1
    from remit.objectives.stats import summarize
