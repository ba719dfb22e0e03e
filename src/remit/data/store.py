"""Memory-mapped token shards plus document offsets: what tokenisation writes and packing reads.

    w = ShardWriter(dir, dtype=np.uint16)       # one shard per chunk of documents, written atomically
    w.add(lengths, flat)                        # flat = the chunk's ids, eos after each document
    w.finish({"fingerprint": fp})               # offsets.npy + meta.json (the completion mark)
    toks = ShardedTokens.open(dir)              # toks.read(lo, hi): ids lo..hi of the whole stream

A folder holds ``shard-XXXXX.bin`` (raw ids, no header, like dolma's files), ``shard-XXXXX.len.npy`` (the
shard's document lengths; written after the .bin, so its presence marks a finished shard),
``offsets.npy`` (int64 [n_docs + 1] over the concatenated stream) and ``meta.json``. A killed writer
resumes: ``ShardWriter.docs_done`` counts the documents of the finished shards, and the caller skips them.

Integrity (``remit.utils.integrity``): every shard is fsynced before its rename, its size and CRC-32 are
recorded when it is written (``shard-XXXXX.sum.json``, then ``shard_bytes`` / ``shard_crc32`` in meta.json);
opening the store checks every shard's size against them (a torn shard fails at once, not as an
IndexError later), and the first read of a shard in a process checks its checksum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from remit.errors import DataError
from remit.utils.integrity import check_once, write_durable
from remit.utils.io import atomic_write_json, remove_stale_temps

META = "meta.json"
REBUILD = ("delete {folder} and re-run `remit prepare-data` (or the training stage) with the same data config: "
           "it tokenises the data again")


class ShardedTokens:
    """Several flat id arrays read as one (``read(lo, hi)``); nothing is loaded until read."""

    def __init__(self, arrays: list[np.ndarray], names: list[str] | None = None, sums: list[str] | None = None,
                 paths: list[Path] | None = None):
        self.arrays = arrays
        self.names = names or [f"array {i}" for i in range(len(arrays))]
        self.paths = paths or [Path(n) for n in self.names]
        self._checked: set[int] = set()
        self.sums = sums  # CRC-32 per array (files written by ShardWriter), checked at the first read
        self.starts = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in arrays], out=self.starts[1:])
        self.dtype = arrays[0].dtype if arrays else np.dtype(np.uint32)

    @classmethod
    def open(cls, folder: Path, files: list[str], dtype: str, sizes: list[int] | None = None,
             sums: list[str] | None = None) -> ShardedTokens:
        """The store's shards; with ``sizes`` (meta.json's ``shard_bytes``) a torn shard is refused here."""
        paths = [Path(folder) / name for name in files]
        for i, p in enumerate(paths):
            size = p.stat().st_size if p.is_file() else None
            if sizes is not None and size != sizes[i]:
                have = "missing" if size is None else f"{size} bytes"
                raise DataError(f"{p}: the token shard is torn ({have}, {sizes[i]} bytes when it was written); "
                                + REBUILD.format(folder=Path(folder)))
        return cls([map_ids(p, np.dtype(dtype)) for p in paths], [str(p.resolve()) for p in paths], sums)

    @classmethod
    def open_files(cls, paths: list[Path], dtype: str, names: list[str]) -> ShardedTokens:
        """Files of one or more stores by path: those of a ShardWriter store are checked like :meth:`open`."""
        sums: list[str] = []
        for p in paths:
            meta = read_meta(p.parent) or {}
            shards = meta.get("shards") or []
            if p.name in shards and meta.get("shard_bytes"):
                k = shards.index(p.name)
                cls.open(p.parent, [p.name], dtype, [meta["shard_bytes"][k]])
                sums.append(meta["shard_crc32"][k])
            else:
                sums.append("")
        return cls([map_ids(p, np.dtype(dtype)) for p in paths], names, sums, list(paths))

    def _verify(self, i: int) -> None:
        if i in self._checked:  # the hot path: one set lookup per read
            return
        if self.sums and self.sums[i]:
            check_once(self.paths[i], self.sums[i], rebuild=REBUILD.format(folder=self.paths[i].parent),
                       what="token shard")
        self._checked.add(i)

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
            self._verify(i)
            return self.arrays[i][lo - self.starts[i]:hi - self.starts[i]]
        parts = []
        while lo < hi:
            self._verify(i)
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
        self.sums: list[dict] = []  # {"bytes", "crc32"} of each finished shard
        while (self.folder / f"shard-{len(self.lengths):05d}.len.npy").is_file():
            k = len(self.lengths)
            self.lengths.append(np.load(self.folder / f"shard-{k:05d}.len.npy"))
            try:
                self.sums.append(json.loads((self.folder / f"shard-{k:05d}.sum.json").read_text()))
            except (OSError, ValueError):  # written by an older remit: recorded now
                from remit.utils.integrity import crc32_file

                b = self.folder / f"shard-{k:05d}.bin"
                self.sums.append({"bytes": b.stat().st_size, "crc32": crc32_file(b)})

    @property
    def docs_done(self) -> int:
        return int(sum(len(x) for x in self.lengths))

    def add(self, lengths: np.ndarray, flat: np.ndarray) -> None:
        if int(np.sum(lengths)) != len(flat):
            raise ValueError(f"{len(flat)} ids for documents of {int(np.sum(lengths))} ids")
        k = len(self.lengths)
        data = np.ascontiguousarray(flat, self.dtype)
        crc = write_durable(self.folder / f"shard-{k:05d}.bin", lambda f: f.write(data.data))
        s = {"bytes": data.nbytes, "crc32": crc}
        write_durable(self.folder / f"shard-{k:05d}.sum.json", lambda f: f.write(json.dumps(s).encode()))
        # the .len.npy last: its presence marks a finished shard
        write_durable(self.folder / f"shard-{k:05d}.len.npy", lambda f: np.save(f, np.asarray(lengths, np.int64)))
        self.lengths.append(np.asarray(lengths, np.int64))
        self.sums.append(s)

    def finish(self, meta: dict) -> dict:
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        np.save(self.folder / "offsets.npy", offsets)
        full = {**meta, "dtype": self.dtype.name, "num_docs": len(lengths), "num_tokens": int(offsets[-1]),
                "shards": [f"shard-{k:05d}.bin" for k in range(len(self.lengths))],
                "shard_bytes": [x["bytes"] for x in self.sums], "shard_crc32": [x["crc32"] for x in self.sums]}
        atomic_write_json(self.folder / META, full)
        return full


def map_ids(path: Path, dtype: np.dtype) -> np.ndarray:
    """A flat id file, memory-mapped: raw ids (dolma's format) or an ``np.save`` file of that dtype."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            try:
                arr = np.load(path, mmap_mode="r")
            except ValueError as e:  # a header that promises more data than the file holds, or a broken header
                raise DataError(f"{path}: the .npy file is truncated or damaged ({e}): copy or write it again") from None
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
