"""Memory-mapped token shards plus document offsets: what tokenisation writes and packing reads.

    w = ShardWriter(dir, dtype=np.uint16)       # one shard per chunk of documents, written atomically
    w.add(lengths, flat)                        # flat = the chunk's ids, eos after each document
    w.finish({"fingerprint": fp})               # offsets.npy + meta.json (the completion mark)
    toks = ShardedTokens.open(dir)              # toks.read(lo, hi): ids lo..hi of the whole stream

A folder holds ``shard-XXXXX.bin`` (raw ids, no header, like dolma's files), ``shard-XXXXX.len.npy`` (the
shard's document lengths; written after the .bin, so its presence marks a finished shard),
``offsets.npy`` (int64 [n_docs + 1] over the concatenated stream) and ``meta.json``. A killed writer
resumes: ``ShardWriter.docs_done`` counts the documents of the finished shards, and the caller skips them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from remit.errors import DataError
from remit.utils.io import atomic_write_json, remove_stale_temps

META = "meta.json"


class ShardedTokens:
    """Several flat id arrays read as one (``read(lo, hi)``); nothing is loaded until read."""

    def __init__(self, arrays: list[np.ndarray], names: list[str] | None = None):
        self.arrays = arrays
        self.names = names or [f"array {i}" for i in range(len(arrays))]
        self.starts = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in arrays], out=self.starts[1:])
        self.dtype = arrays[0].dtype if arrays else np.dtype(np.uint32)

    @classmethod
    def open(cls, folder: Path, files: list[str], dtype: str) -> ShardedTokens:
        paths = [Path(folder) / name for name in files]
        return cls([map_ids(p, np.dtype(dtype)) for p in paths], [str(p.resolve()) for p in paths])

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Ids ``lo:hi`` of the concatenated stream (a view when they lie in one array)."""
        if hi <= lo:
            return np.zeros(0, dtype=self.dtype)
        i = int(np.searchsorted(self.starts, lo, side="right")) - 1
        if hi <= self.starts[i + 1]:
            return self.arrays[i][lo - self.starts[i]:hi - self.starts[i]]
        parts = []
        while lo < hi:
            end = min(hi, int(self.starts[i + 1]))
            parts.append(self.arrays[i][lo - self.starts[i]:end - self.starts[i]])
            lo, i = end, i + 1
        return np.concatenate(parts)

    def __getitem__(self, key):
        if isinstance(key, slice):
            lo, hi, step = key.indices(len(self))
            return self.read(lo, hi)[::step] if step != 1 else self.read(lo, hi)
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        out = self.read(0, len(self))
        return out.astype(dtype) if dtype is not None else np.array(out)


class ShardWriter:
    """Appends chunks of tokenised documents as shards; resumable at shard granularity."""

    def __init__(self, folder: Path, dtype):
        self.folder = Path(folder)
        self.dtype = np.dtype(dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.folder)  # a dead writer's temp shards; a live one's are left alone
        self.lengths: list[np.ndarray] = []
        while (self.folder / f"shard-{len(self.lengths):05d}.len.npy").is_file():
            self.lengths.append(np.load(self.folder / f"shard-{len(self.lengths):05d}.len.npy"))

    @property
    def docs_done(self) -> int:
        return int(sum(len(x) for x in self.lengths))

    def add(self, lengths: np.ndarray, flat: np.ndarray) -> None:
        if int(np.sum(lengths)) != len(flat):
            raise ValueError(f"{len(flat)} ids for documents of {int(np.sum(lengths))} ids")
        k = len(self.lengths)
        for name, write in ((f"shard-{k:05d}.bin", lambda f: f.write(np.ascontiguousarray(flat, self.dtype).data)),
                            (f"shard-{k:05d}.len.npy", lambda f: np.save(f, np.asarray(lengths, np.int64)))):
            tmp = self.folder / f".{name}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, self.folder / name)
        self.lengths.append(np.asarray(lengths, np.int64))

    def finish(self, meta: dict) -> dict:
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        np.save(self.folder / "offsets.npy", offsets)
        full = {**meta, "dtype": self.dtype.name, "num_docs": len(lengths), "num_tokens": int(offsets[-1]),
                "shards": [f"shard-{k:05d}.bin" for k in range(len(self.lengths))]}
        atomic_write_json(self.folder / META, full)
        return full


def map_ids(path: Path, dtype: np.dtype) -> np.ndarray:
    """A flat id file, memory-mapped: raw ids (dolma's format) or an ``np.save`` file of that dtype."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            arr = np.load(path, mmap_mode="r")
            if arr.dtype != dtype or arr.ndim != 1:
                raise DataError(f"{path}: a {arr.dtype} array of shape {arr.shape}, but the source says "
                                f"dtype={dtype.name} (set dtype to the file's, one of uint16, uint32)")
            return arr
        size = path.stat().st_size
        if size % dtype.itemsize:
            raise DataError(f"{path}: {size} bytes is not a whole number of {dtype.name} ids: the dtype is wrong "
                            f"(set dtype=uint16 or dtype=uint32 to the one the file was written with)")
        return np.memmap(path, dtype=dtype, mode="r") if size else np.zeros(0, dtype)
    except OSError as e:
        raise DataError(f"{path}: cannot read the token file ({e})") from None


def read_meta(folder: Path) -> dict | None:
    """The store's meta.json, or None when the store is absent or unfinished."""
    p = Path(folder) / META
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id (what dolma writes: uint16 up to 65536 ids)."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)
