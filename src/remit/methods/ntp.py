"""Plain next-token prediction: the vanilla anneal (and pre-training)."""

from __future__ import annotations

from remit.methods.base import Method
from remit.objectives.base import NTP

METHOD = Method(name="ntp", build=lambda cfg: NTP(), label="vanilla", role="vanilla",
                help="next-token prediction, every counted token weighted 1")
