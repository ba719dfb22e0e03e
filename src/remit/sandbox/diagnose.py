"""``remit.sandbox.diagnose()``: which of the sandbox's layers hold on this machine, measured; ``require()``.

    python -c "from remit.sandbox import diagnose; import json; print(json.dumps(diagnose(), indent=1))"

Each layer is measured from inside a sandboxed run (``SandboxResult.isolation``: True = enforced),
and the process limit is also *tested*: a program without the Python prelude forks until the
kernel refuses, and the count is compared with the limit. ``missing`` lists the layers of
:data:`REQUIRED` that do not hold. :func:`require` is what runs model code on purpose (the code
reward, code benchmarks) call first: it refuses with one line when a layer is missing, unless the
user opted out (``sandbox_unenforced_ok=true``), which prints one warning.
"""

from __future__ import annotations

import functools
import os
import sys

from remit.errors import RemitError
from remit.sandbox import bwrap
from remit.sandbox.runner import backend, run_python

__all__ = ["REQUIRED", "SandboxUnavailableError", "configure", "diagnose", "missing_layers", "require"]

# Layer -> what it means when enforced.
REQUIRED = {
    "unprivileged": "the program runs as an unprivileged uid/gid with no capabilities",
    "no_new_privs": "no_new_privs: no setuid binary can give privileges back",
    "seccomp": "a seccomp filter denies mount, setns, unshare, ptrace, bpf, keyctl, modules, ...",
    "network": "its own network namespace: no interface but a down loopback",
    "pid_namespace": "its own PID namespace: it sees and signals only its processes, all die with it",
    "readonly_fs": "every filesystem is read-only except its working directory",
    "private_proc": "a private, read-only /proc",
    "no_sys": "no writable /sys",
    "hidden_host_files": "no /etc/shadow, no home directories, no host socket files",
    "disk_quota": "a total size limit on everything it writes",
    "pids_cgroup": "a pids cgroup it cannot write limits its processes and threads",
}

_FORK_COUNT = """
import errno, os, time
n = 0
try:
    while n < 200:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, errno.errorcode.get(e.errno, e.errno))
else:
    print(n, "none")
"""


_POLICY = {"unenforced_ok": False}


def configure(*, unenforced_ok: bool) -> None:
    """Set the process's policy from the stage's config (``sandbox_unenforced_ok``)."""
    _POLICY["unenforced_ok"] = bool(unenforced_ok)


class SandboxUnavailableError(RemitError):
    """A layer the sandbox requires is not enforced on this machine; the message names it and the fix."""


@functools.cache
def _isolation() -> dict:
    return dict(run_python("pass", timeout_s=30).isolation)


def missing_layers() -> list[str]:
    """The layers of :data:`REQUIRED` a sandboxed run does not get here (measured once per process)."""
    iso = _isolation()
    return [k for k in REQUIRED if iso.get(k) is not True]


def require(unenforced_ok: bool | None = None) -> None:
    """Refuse (one line) to run model code when a required layer is missing; or warn once when opted out.

    ``unenforced_ok`` defaults to the policy :func:`configure` set (False unless a stage's config says so).
    """
    if unenforced_ok is None:
        unenforced_ok = _POLICY["unenforced_ok"]
    missing = missing_layers()
    if not missing:
        return
    why = bwrap.available()[1]
    msg = (f"the code sandbox does not enforce {', '.join(missing)} here (backend {backend()}"
           f"{': ' + why if why else ''})")
    if not unenforced_ok:
        raise SandboxUnavailableError(f"{msg}; install bubblewrap (`make sandbox-tools`), or set "
                                      "sandbox_unenforced_ok=true to run model-written code anyway")
    _warn_once(msg)


@functools.cache
def _warn_once(msg: str) -> None:
    print(f"[remit sandbox] WARNING: {msg}; running model-written code anyway (sandbox_unenforced_ok=true)",
          file=sys.stderr, flush=True)


def diagnose(max_procs: int = 4) -> dict:
    """{"backend", "bwrap", "layers", "missing", "root", "process_limit", "guarantees"}."""
    iso = run_python("pass").isolation
    layers = {k: iso.get(k) is True for k in REQUIRED}
    r = run_python(_FORK_COUNT, max_procs=max_procs, python_guards=False, timeout_s=10)
    parts = r.stdout.split()
    forked = int(parts[0]) if len(parts) == 2 and parts[0].isdigit() else None
    holds = forked is not None and forked < max_procs and parts[1] == "EAGAIN"
    ok, why = bwrap.available()
    lines = [f"{k}: {'enforced' if v else 'NOT enforced'} ({REQUIRED[k]})" for k, v in layers.items()]
    lines.append(f"process count: {'at most max_procs, enforced by the kernel' if holds else 'NOT enforced by the kernel'}"
                 f" (a fork loop without the prelude made {forked} of {max_procs - 1} allowed children)")
    if not ok:
        lines.append(f"bubblewrap: {why}")
    return {"backend": iso.get("backend"), "bwrap": "ok" if ok else why, "layers": layers,
            "missing": [k for k, v in layers.items() if not v], "root": os.geteuid() == 0,
            "process_limit": {"limit": max_procs, "forked": forked, "holds": holds}, "guarantees": lines}
