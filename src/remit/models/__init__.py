"""Models: load any HF causal LM, build tiny ones, train a tokenizer, check policy/reference pairs.

Import-light: the names below are resolved lazily (no torch/transformers import here).
"""

from __future__ import annotations

from remit.utils.lazy import lazy_exports

_EXPORTS = {
    "load_model": "load",
    "load_tokenizer": "load",
    "tiny_config": "tiny",
    "tiny_model": "tiny",
    "init_model": "tiny",
    "param_count": "tiny",
    "ModelConfig": "tiny",
    "ARCHS": "tiny",
    "train_tokenizer": "tokenizer",
    "CHAT_TEMPLATE": "tokenizer",
    "SPECIAL_TOKENS": "tokenizer",
    "check_compatible": "compat",
    "check_positions": "compat",
    "check_vocab_rows": "compat",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
