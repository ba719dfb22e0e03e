"""Atomic file/directory writes and fingerprints shared by every stage (manifests: ``remit.manifest``).

A stage writes its output into ``.<dir>.tmp-<pid>``, fsyncs every file and the folder, and renames
it into place, so neither a crash nor a power loss leaves a half-written checkpoint under the final
name; ``remove_stale_temps`` deletes the temp folders a killed process left behind.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from remit.utils.lock import pid_alive


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a temp directory that replaces ``path`` only if the block finishes.

    An existing ``path`` is moved aside first and deleted after the swap, so at every
    instant either the old or the new complete directory exists under a known name.
    ``keep_existing``: for content-addressed outputs (a cache keyed by its fingerprint), where two
    processes may build the same folder at once: whoever finishes second keeps the first one's folder
    and drops its own copy, instead of replacing it under a reader or failing on the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_dead_siblings(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)  # the data is on disk before the rename makes it visible
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_existing:
        try:
            os.rename(tmp, path)  # fails if another process put a non-empty folder there first
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        fsync_dir(path.parent)
        return
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(path.parent)


def _clean_dead_siblings(path: Path) -> None:
    """Remove the ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` folders of ``path`` whose process is dead.

    A process killed between its two renames leaves ``path`` missing and the previous output under
    ``.old-<pid>``: that one is put back rather than deleted.
    """
    for p in path.parent.glob(f".{glob.escape(path.name)}.*-*"):
        m = _TEMP.match(p.name)
        if not m or p.name[: -len(m.group(1)) - 5] != f".{path.name}" or pid_alive(int(m.group(1))):
            continue
        if p.name.endswith(f".old-{m.group(1)}") and not path.exists():
            with contextlib.suppress(OSError):
                os.rename(p, path)
                continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every folder (deepest first), ``root`` included."""
    dirs = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        dirs += [Path(dirpath) / d for d in dirnames]
        for name in filenames:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


_TEMP = re.compile(r"^\..+\.(?:tmp|old)-(\d+)(?:\.[A-Za-z0-9]+)?$")


def remove_stale_temps(root: str | Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` entries of ``root`` left by dead processes.

    Call it at the start of a run, holding the folder's lock (``remit.utils.lock``): an entry of this
    very pid is then a leftover too (a container's pid 1 killed and restarted gets the same pid).
    Returns what was removed.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    removed = []
    for p in root.iterdir():
        m = _TEMP.match(p.name)
        if not m or (pid_alive(int(m.group(1))) and int(m.group(1)) != os.getpid()):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort: some filesystems refuse a directory fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of one file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(obj: Any, n: int = 16) -> str:
    """Short stable sha256 of a JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


HASHED = {"files": 0, "bytes": 0}  # what file_fingerprint really read in this process (tests, logs)
_MEMO: dict[str, str] = {}  # (path, size, mtime) of every file -> sha256, in this process
_MEMO_KEEP = 512  # entries kept in a memo file


def file_fingerprint(paths: list[str | Path] | str | Path, n: int = 16, memo: str | Path | None = None) -> str:
    """sha256 over the bytes of files (directories: every file inside, sorted).

    Memoised by every file's (path, size, mtime): in this process, and in the JSON file ``memo`` when
    given (the data cache keeps one, so a resume or the next job reads no byte of a 400 GB corpus again).
    Like make and rsync, a file rewritten in place with the same size and mtime is not noticed (touch it).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[tuple[str, Path]] = []
    for p in paths:
        p = Path(p)
        found = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        files += [(str(q.relative_to(p) if p.is_dir() else q.name), q) for q in found]
    stats = [(name, str(q.resolve()), q.stat().st_size, q.stat().st_mtime_ns) for name, q in files]
    key = fingerprint(stats, 32)
    digest = _MEMO.get(key) or (_read_memo(memo).get(key) if memo else None)
    if digest is None:
        h = hashlib.sha256()
        for name, q in files:
            h.update(name.encode())
            with open(q, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        digest = h.hexdigest()
        HASHED["files"] += len(files)
        HASHED["bytes"] += sum(s[2] for s in stats)
        if memo:
            table = _read_memo(memo)
            table[key] = digest
            with contextlib.suppress(OSError):  # a read-only cache still works, it only hashes again
                atomic_write_json(memo, dict(list(table.items())[-_MEMO_KEEP:]))
    _MEMO[key] = digest
    return digest[:n]


def _read_memo(path: str | Path) -> dict[str, str]:
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}
