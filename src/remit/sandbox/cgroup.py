"""A pids cgroup per sandboxed run: a process limit that holds for root, where RLIMIT_NPROC does not.

The caller creates ``<pids hierarchy>/<its own cgroup>/remit-sandbox-<pid>-<n>`` with ``pids.max``;
the sandbox's bootstrap moves itself into it (``cgroup.procs``) before it starts anything, so every
process and thread the program makes is counted, and ``fork`` fails with EAGAIN at the limit.
Where no writable pids hierarchy exists (no cgroup v1 ``pids`` mount, no ``pids`` in the cgroup v2
``subtree_control``, not allowed to create cgroups), :meth:`PidsCgroup.create` returns None and
the sandbox falls back to RLIMIT_NPROC (which root ignores); ``remit.sandbox.diagnose`` says so.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from pathlib import Path

__all__ = ["PidsCgroup", "pids_hierarchy"]

_COUNTER = itertools.count()


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of every mount."""
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, rest = left.split(), right.split()
                if len(fields) > 4 and len(rest) >= 3:
                    out.append((fields[4].replace("\\040", " "), rest[0], rest[2]))
    except OSError:
        pass
    return out


@functools.cache
def pids_hierarchy() -> Path | None:
    """The folder under which this process may create pids-limited cgroups, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    own = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            own[c] = path
    mounts = _mounts()
    candidates = []
    if "pids" in own:  # cgroup v1
        for mp, fstype, opts in mounts:
            if fstype == "cgroup" and "pids" in opts.split(","):
                candidates.append(Path(mp + own["pids"]))
    if "" in own:  # cgroup v2: pids must be enabled for our cgroup's children
        for mp, fstype, _ in mounts:
            if fstype == "cgroup2":
                base = Path(mp + own[""])
                try:
                    if "pids" in (base / "cgroup.subtree_control").read_text().split():
                        candidates.append(base)
                except OSError:
                    pass
    for base in candidates:
        probe = base / f"remit-sandbox-probe-{os.getpid()}"
        try:
            probe.mkdir()
            ok = (probe / "pids.max").is_file()
            probe.rmdir()
        except OSError:
            continue
        if ok:
            return base
    return None


class PidsCgroup:
    """One cgroup limiting the number of processes (and threads) of one sandboxed run."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        base = pids_hierarchy()
        if base is None:
            return None
        path = base / f"remit-sandbox-{os.getpid()}-{next(_COUNTER)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(int(max_pids)))
        except OSError:
            cls(path).close()
            return None
        return cls(path)

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (at the limit, a survivor cannot fork, so this converges)."""
        kill_file = self.path / "cgroup.kill"  # cgroup v2, Linux >= 5.14
        if kill_file.is_file():
            try:
                kill_file.write_text("1")
                return
            except OSError:
                pass
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def close(self) -> None:
        """Kill what is left and remove the cgroup (it empties once the killed processes are reaped)."""
        if not self.path.exists():
            return
        self.kill()
        for _ in range(200):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.005)
