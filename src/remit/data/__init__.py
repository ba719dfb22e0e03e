"""Data: sources, cached tokenisation, packing with document ids, resumable batch iteration.

Import-light: the names below are resolved lazily.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataSource": "sources",
    "read_texts": "sources",
    "iter_texts": "sources",
    "tokenize_source": "tokens",
    "tokenizer_fingerprint": "tokens",
    "TokenizedSource": "tokens",
    "build_packed": "packing",
    "PackedDataset": "packing",
    "BatchIterator": "iterator",
    "IGNORE_INDEX": "iterator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"remit.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'remit.data' has no attribute {name!r}")
