"""Already-tokenised corpora: the flat token arrays that dolma writes and OLMo-core's numpy datasets read.

    DataSource(path="dolmino/math", kind="tokens", dtype="uint32", eos_token_id=100257)

A file is a raw array of uint16 or uint32 ids with no header (``np.memmap(path, dtype)``, as dolma's
tokenizer writes ``part-*.npy``; a real ``np.save`` file is read too); documents are separated by the
EOS id (each ends with it; a file's tail without one is its last document). ``path``: a file, a folder
(every ``*.npy`` / ``*.bin`` inside, sorted; in a seeded shuffled order when capped) or a glob. Nothing is copied: packing reads the ids in place.
The document offsets come from one scan for the EOS id, in chunks (memory: one chunk), and are cached.

Refused with a one-line ``DataError`` naming the file: a size that is not a multiple of the dtype, a
dtype too small for the tokenizer's vocabulary, an EOS id other than the tokenizer's, an id outside the
tokenizer's vocabulary, a file with no EOS at all.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from remit.data.sources import DataSource, read_order
from remit.data.store import ShardedTokens, map_ids
from remit.errors import DataError

TOKEN_SUFFIXES = (".npy", ".bin")
SCAN_CHUNK = 1 << 24  # ids per scan step: 64 MiB of uint32


def token_files(src: DataSource) -> list[Path]:
    path = Path(src.path).expanduser()
    if any(c in src.path for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TOKEN_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"{path}: file not found")
    if not files:
        raise DataError(f"{src.path}: no token files ({', '.join(TOKEN_SUFFIXES)}) for kind=tokens")
    return read_order(files, src)


def open_token_files(src: DataSource) -> ShardedTokens:
    dtype = np.dtype(src.dtype)
    files = token_files(src)
    return ShardedTokens([map_ids(f, dtype) for f in files], [str(f.resolve()) for f in files])


def check_fit(src: DataSource, tokenizer) -> int:
    """The EOS id documents are split at, after checking the source against the tokenizer."""
    eos = tokenizer.eos_token_id if src.eos_token_id is None else src.eos_token_id
    if eos != tokenizer.eos_token_id:
        raise DataError(f"{src.path}: eos_token_id={eos} but the tokenizer's EOS id is {tokenizer.eos_token_id}: "
                        f"the files were tokenised with another tokenizer (use the model's own, or fix eos_token_id)")
    if len(tokenizer) > np.iinfo(np.dtype(src.dtype)).max + 1:
        raise DataError(f"{src.path}: dtype={src.dtype} holds ids below {np.iinfo(np.dtype(src.dtype)).max + 1}, "
                        f"but the tokenizer has {len(tokenizer)}: set dtype=uint32")
    return eos


def scan_offsets(tokens: ShardedTokens, eos: int, vocab_size: int, max_tokens: int | None = None) -> np.ndarray:
    """Document offsets (int64 [n_docs + 1]) over the concatenated files; documents never cross files.

    ``max_tokens``: stop at the first document end at or past it (the files are read only up to there).
    """
    bounds = [np.zeros(1, np.int64)]
    for arr, name, start in zip(tokens.arrays, tokens.names, tokens.starts[:-1]):
        found = 0
        for lo in range(0, len(arr), SCAN_CHUNK):
            chunk = np.asarray(arr[lo:lo + SCAN_CHUNK])
            ends = np.flatnonzero(chunk == eos).astype(np.int64) + (start + lo + 1)
            done = max_tokens is not None and len(ends) > 0 and ends[-1] >= max_tokens
            if done:  # the ids past the document that reaches the cap are neither checked nor used
                ends = ends[:int(np.searchsorted(ends, max_tokens)) + 1]
                chunk = chunk[:int(ends[-1]) - (start + lo)]
            top = int(chunk.max()) if len(chunk) else 0
            if top >= vocab_size:
                at = lo + int(np.argmax(chunk >= vocab_size))
                raise DataError(f"{name}: id {top} at position {at} is outside the tokenizer's vocabulary "
                                f"({vocab_size} ids): the files were tokenised with another tokenizer or dtype")
            found += len(ends)
            bounds.append(ends)
            if done:
                return np.concatenate(bounds)
        if len(arr) and not found:
            raise DataError(f"{name}: no EOS id {eos} in {len(arr)} ids: not documents separated by this EOS "
                            f"(check eos_token_id and dtype)")
        if len(arr) and int(arr[-1]) != eos:
            bounds.append(np.array([start + len(arr)], np.int64))  # the file's tail without an EOS
            if max_tokens is not None and start + len(arr) >= max_tokens:
                break
    return np.concatenate(bounds)
