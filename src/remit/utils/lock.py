"""One run per output folder: an exclusive lock held for the whole run of a stage.

    from remit.utils.lock import out_dir_lock
    with out_dir_lock(cfg.out_dir, "midtrain"):   # a second `remit midtrain` on the folder fails at once
        ...

The lock is ``flock`` on a hidden sibling file ``<parent>/.<name>.lock`` (a sibling, not a file inside
the folder, because stages that write through ``remit.utils.io.atomic_dir`` replace the folder
whole). The kernel drops an ``flock`` when its process dies, ``kill -9`` included, so a lock file
left behind by a dead process is stale by construction: the next run takes it over. The file holds
the holder's pid, host, stage and start time, which the error of a second run names.

Worker processes do not keep the lock: an ``flock`` belongs to the open file, which ``fork`` shares,
so a child forked while the lock is held (``datasets`` with ``num_proc``, data-loader workers) closes
its copy at once, and gets SIGKILL when the stage dies (``PR_SET_PDEATHSIG``): a killed stage leaves
neither workers nor a lock behind. (The fd is also close-on-exec, for children that exec.) A lock
still held although the pid it names is dead on this host (orphans of a stage started by an older
remit, or a worker that is not Python's ``fork``) is taken over: the file is replaced, with a warning
naming the processes that still hold the old one.
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
_FDS: dict[str, int] = {}  # resolved lock path -> the fd holding its flock (this process)


_FORKER = [0]  # the pid that is forking (set just before every fork)


def _before_fork() -> None:
    _FORKER[0] = os.getpid()


def _after_fork_in_child() -> None:
    """A forked worker drops the stage's locks (without unlocking them) and dies with the stage."""
    if not _FDS:
        return
    for fd in _FDS.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _FDS.clear()
    _HELD.clear()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG = SIGKILL
        if os.getppid() != _FORKER[0]:  # the stage died before prctl took effect
            os.kill(os.getpid(), 9)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


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
    _FDS[name] = fd
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "stage": stage, "started": time.time(),
                "argv": sys.argv[:8]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield out
    finally:
        del _HELD[name]
        _FDS.pop(name, None)
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
                if _take_over(lp, out):
                    continue
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


def _holders_of(lp: Path) -> list[int]:
    """Pids of this host's processes with the lock file open (Linux /proc; [] elsewhere)."""
    try:
        ino = os.stat(lp).st_ino
    except OSError:
        return []
    pids = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            for fd in (p / "fd").iterdir():
                if os.stat(fd).st_ino == ino and os.readlink(fd) == str(lp):
                    pids.append(int(p.name))
                    break
        except OSError:
            continue
    return pids


def _take_over(lp: Path, out: Path) -> bool:
    """The lock is held, but the pid it names is dead on this host: replace the file (True) or not (False)."""
    info = holder(out)
    if not info or info.get("host") != socket.gethostname() or pid_alive(int(info.get("pid") or 0)):
        return False
    others = [p for p in _holders_of(lp) if p != os.getpid()]
    with contextlib.suppress(OSError):
        os.unlink(lp)  # the orphans keep the old inode; _acquire locks a new file
    print(f"remit: warning: took over the lock of {out}: its holder (pid {info.get('pid')}) is dead"
          + (f"; processes {others} it left still hold the old lock file" if others else ""), file=sys.stderr)
    return True
