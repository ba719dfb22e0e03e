"""The bubblewrap (``bwrap``) command line of one sandboxed run: the kernel boundary of the sandbox.

bubblewrap is the maintained tool Flatpak uses (``apt-get install bubblewrap``; ``make sandbox-tools``
installs it). Each run gets:

- new user, PID, network, IPC, UTS (and cgroup) namespaces; inside the user namespace the program is
  uid/gid 65534 with an empty capability set, ``no_new_privs`` (bwrap always sets it), no further
  user namespaces (``--disable-userns``), and the seccomp filter of :mod:`remit.sandbox.seccomp`;
- a root that holds only what the interpreter needs, all read-only: ``/usr`` (and the ``/bin``,
  ``/lib*`` links), the Python installation (its prefix only, even when it lives under a home
  directory), ``/etc/ld.so.cache``; a fresh read-only ``/proc`` of its own PID namespace, a minimal
  ``/dev``, no ``/sys``, no ``/home``, no host ``/tmp``, ``/run`` or ``/var`` (so no host socket files);
- one size-capped tmpfs at ``/tmp``, the working directory: the disk quota of the whole run;
- the program's files read-only at ``/run/remit``.

As root, bwrap creates the user namespace itself; otherwise the kernel must allow unprivileged user
namespaces. :func:`available` tries it once per process and says why not.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["INSIDE_DIR", "INSIDE_WORK", "SANDBOX_ID", "argv", "available", "python_binds"]

SANDBOX_ID = 65534  # nobody / nogroup
INSIDE_WORK = "/tmp"
INSIDE_DIR = "/run/remit"


def python_binds() -> list[str]:
    """Host folders of the interpreter outside /usr (its prefix), bound read-only at the same path."""
    out = []
    for p in {os.path.realpath(sys.base_prefix), os.path.dirname(os.path.realpath(sys.executable))}:
        if p != "/usr" and not p.startswith("/usr/") and not any(p.startswith(q + "/") or p == q for q in out):
            out.append(p)
    return sorted(out)


def argv(host_dir: str, *, disk_bytes: int, seccomp_fd: int | None, env: dict[str, str] | None = None) -> list[str]:
    """bwrap's arguments up to (not including) the command; ``env`` is the program's whole environment."""
    exe = shutil.which("bwrap")
    assert exe is not None
    a = [exe, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_ID), "--gid", str(SANDBOX_ID),
         "--disable-userns", "--die-with-parent", "--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
    if os.geteuid() == 0:
        a += ["--cap-drop", "ALL"]
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/", d)
        if p.is_symlink():
            a += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            a += ["--ro-bind", str(p), str(p)]
    for p in python_binds():
        a += ["--ro-bind", p, p]
    a += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
          "--proc", "/proc", "--remount-ro", "/proc", "--dev", "/dev",
          "--size", str(int(disk_bytes)), "--tmpfs", INSIDE_WORK, "--ro-bind", host_dir, INSIDE_DIR,
          "--chdir", INSIDE_WORK, "--remount-ro", "/"]
    for k, v in (env or {}).items():
        a += ["--setenv", k, v]
    if seccomp_fd is not None:
        a += ["--seccomp", str(seccomp_fd)]
    return a + ["--"]


@functools.cache
def available() -> tuple[bool, str]:
    """(usable, why not): bwrap is installed and can build this sandbox here."""
    if not sys.platform.startswith("linux"):
        return False, "bubblewrap needs Linux"
    if shutil.which("bwrap") is None:
        return False, "bubblewrap is not installed (apt-get install bubblewrap, or `make sandbox-tools`)"
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        r = subprocess.run(argv(str(tmp), disk_bytes=1 << 20, seccomp_fd=None) + [os.path.realpath(sys.executable),
                           "-I", "-S", "-c", "pass"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bubblewrap failed to start ({e})"
    if r.returncode != 0:
        tail = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, f"bubblewrap cannot create the sandbox here: {tail[-1] if tail else r.returncode}"
    return True, ""
