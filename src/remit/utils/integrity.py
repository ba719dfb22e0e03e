"""Cache files that cannot be read torn or corrupted: fsync before rename, and a content checksum.

    crc = write_durable(final, lambda f: f.write(data))   # temp file, fsync, rename, fsync the folder
    check_once(path, want_crc, rebuild="re-run `remit prepare-data`")   # reads the file once per process

The checksum is CRC-32 of the file's bytes (``zlib.crc32``, ~1 GB/s): recorded when the file is written,
compared the first time this process reads it (a process-wide set remembers which files of which size
and mtime were verified), so a run pays one read per shard, and a file zeroed or changed after it was
written is refused with one line naming it and the command that rebuilds it.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from remit.errors import DataError
from remit.utils.io import fsync_dir

__all__ = ["check_once", "crc32_file", "write_durable"]

_VERIFIED: set[tuple[str, int, int]] = set()
_CHUNK = 1 << 24


def crc32_file(path: str | Path) -> str:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def write_durable(final: str | Path, write: Callable[[BinaryIO], object]) -> str:
    """Write ``final`` through ``.<name>.tmp-<pid>`` (fsynced before the rename); return its CRC-32."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    crc = crc32_file(tmp)  # from the page cache: what is on disk now
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return crc


def check_once(path: str | Path, want: str | None, *, rebuild: str, what: str = "cache file") -> None:
    """Raise a one-line DataError when ``path``'s CRC-32 is not ``want`` (checked once per file per process)."""
    if not want:
        return
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return
    got = crc32_file(p)
    if got != want:
        raise DataError(f"{p}: the {what} is damaged (CRC-32 {got}, {want} when it was written); {rebuild}")
    _VERIFIED.add(key)
