"""One run per output folder: an exclusive lock held for the whole run of a stage.

    from remit.utils.lock import out_dir_lock
    with out_dir_lock(cfg.out_dir, "midtrain"):   # a second `remit midtrain` on the folder fails at once
        ...

The lock is ``flock`` on a hidden sibling file ``<parent>/.<name>.lock`` (a sibling, not a file inside
the folder, because stages that write through ``remit.utils.io.atomic_dir`` replace the folder
whole). The kernel drops an ``flock`` when its process dies, ``kill -9`` included, so a lock file
left behind by a dead process is stale by construction: the next run takes it over. The file holds
the holder's pid, host, stage and start time, which the error of a second run names.
Re-entering the lock of a folder this process already holds is allowed (the flywheel runs stages
in one process). On a filesystem without ``flock`` support the lock is skipped (a warning).

``ensure_out_dir`` turns an ``out_dir`` that is a file or cannot be created into a one-line
:class:`remit.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from remit.errors import ConfigError, OutDirBusyError

__all__ = ["out_dir_lock", "locks_out_dir", "ensure_out_dir", "lock_path", "holder", "pid_alive"]

_HELD: dict[str, int] = {}  # resolved lock path -> re-entry count (this process)


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (as seen from this PID namespace)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_out_dir(path: str | Path, key: str = "out_dir", create: bool = True) -> Path:
    """Check that ``path`` can be an output folder (and create it): a one-line error naming ``key`` if not."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{key}={p} is an existing file, not a folder: remove it or choose another {key}")
    for parent in p.parents:  # the first existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{key}={p} cannot be created: {parent} is a file, not a folder")
            break
    target = p if create else p.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{key}={p} cannot be created: {e.strerror or e}") from None
    if not os.access(target, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={p} is not writable by this user")
    return p


def lock_path(path: str | Path) -> Path:
    p = Path(path).absolute()
    return p.with_name(f".{p.name}.lock")


def holder(path: str | Path) -> dict | None:
    """What the lock file of ``path`` says about its (last) holder, or None."""
    try:
        return json.loads(lock_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _describe(info: dict | None) -> str:
    if not info:
        return "another process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"process {info.get('pid')} on {info.get('host')} ({info.get('stage') or 'remit'}, since {started})"


@contextlib.contextmanager
def out_dir_lock(path: str | Path, stage: str = "", *, key: str = "out_dir", create: bool = True,
                 enabled: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock of output folder ``path`` for the block (``create``: also make the folder).

    Raises :class:`OutDirBusyError` at once, naming the folder and the holder, when another live
    process holds it. ``enabled=False`` (ranks > 0 of a distributed run) only yields.
    """
    out = Path(path)
    if not enabled:
        yield out
        return
    ensure_out_dir(out, key, create=create)
    lp = lock_path(out)
    name = str(lp)
    if name in _HELD:  # re-entry from the same process
        _HELD[name] += 1
        try:
            yield out
        finally:
            _HELD[name] -= 1
        return
    fd = _acquire(lp, out, key)
    if fd is None:
        yield out
        return
    _HELD[name] = 1
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "stage": stage, "started": time.time(),
                "argv": sys.argv[:8]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield out
    finally:
        del _HELD[name]
        with contextlib.suppress(OSError):
            os.unlink(lp)  # still holding the lock: a waiter re-checks the inode (see _acquire)
        os.close(fd)


def locks_out_dir(key: str, stage: str, create: bool = False, main_only: bool = False):
    """Decorate a stage's ``run(cfg)`` so that it holds the lock of the folder ``cfg.<key>`` throughout.

    ``create=False`` for stages that write through ``atomic_dir`` (the folder appears by a rename).
    ``main_only``: a stage that runs on every process of a launcher (torchrun sets RANK), where only
    rank 0 writes the folder and takes the lock. An unset ``cfg.<key>`` is left to the stage's own check.
    """
    def wrap(fn):
        @functools.wraps(fn)
        def run(cfg):
            path = getattr(cfg, key)
            if not path:
                return fn(cfg)
            enabled = not main_only or int(os.environ.get("RANK", "0")) == 0
            with out_dir_lock(path, stage, key=key, create=create, enabled=enabled):
                return fn(cfg)
        return run
    return wrap


def _acquire(lp: Path, out: Path, key: str) -> int | None:
    for _ in range(10):
        fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutDirBusyError(f"{key}={out} is in use by {_describe(holder(out))}: two runs cannot write "
                                      f"one folder; wait for it to finish or choose another {key}") from None
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                print(f"remit: warning: cannot lock {out} on this filesystem ({e.strerror}); "
                      f"make sure no other run writes it", file=sys.stderr)
                return None
            raise
        # The previous holder unlinks the file on release: if we locked an unlinked inode, retry.
        try:
            same = os.stat(lp).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise OutDirBusyError(f"{key}={out}: could not take its lock {lp} (it keeps changing)")
