"""remit: RL-guided mid-training (ReMiT) and the pre-training <-> post-training flywheel.

Kept import-light on purpose: heavy libraries (torch, transformers, TRL, lm-eval) are
imported inside the modules that need them.
"""

__version__ = "0.1.0"
