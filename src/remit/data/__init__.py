"""Data: sources, streaming cached tokenisation, token files, packing by index with document ids, batches.

Import-light: the names below are resolved lazily.
"""

from __future__ import annotations

from remit.utils.lazy import lazy_exports

_EXPORTS = {
    "DataSource": "sources",
    "read_texts": "sources",
    "iter_texts": "sources",
    "tokenize_source": "tokens",
    "tokenizer_fingerprint": "tokens",
    "source_key": "tokens",
    "TokenizedSource": "tokens",
    "build_packed": "packing",
    "PackedDataset": "packing",
    "IndexedPacked": "packing",
    "ShardedTokens": "store",
    "BatchIterator": "iterator",
    "IGNORE_INDEX": "iterator",
    "packed_batch": "iterator",
    "document_positions": "iterator",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
