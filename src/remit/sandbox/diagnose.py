"""``remit.sandbox.diagnose()``: which of the sandbox's guarantees hold on this machine, measured.

    python -c "from remit.sandbox import diagnose; import json; print(json.dumps(diagnose(), indent=1))"

Each layer is reported as the bootstrap found it (``SandboxResult.isolation``), and the process
limit is also *tested*: a program without the Python prelude forks until the kernel refuses, and
the count is compared with the limit. ``guarantees`` says in words what holds and what does not.
"""

from __future__ import annotations

import os

from remit.sandbox.runner import run_python

__all__ = ["diagnose"]

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


def diagnose(max_procs: int = 4) -> dict:
    """{"isolation": {...}, "root": bool, "process_limit": {"limit", "forked", "holds"}, "guarantees": [...]}."""
    iso = run_python("pass").isolation
    r = run_python(_FORK_COUNT, max_procs=max_procs, python_guards=False, timeout_s=10)
    parts = r.stdout.split()
    forked = int(parts[0]) if len(parts) == 2 and parts[0].isdigit() else None
    holds = forked is not None and forked < max_procs and parts[1] == "EAGAIN"
    root = os.geteuid() == 0
    lines = [
        f"network: {'no interface but a down loopback (network namespace)' if iso.get('network', '').startswith('netns') else 'only the Python prelude blocks sockets'}",
        f"processes: {'every process dies with the program (PID namespace)' if iso.get('pid') == 'pidns' else 'the process group is killed at the end; a setsid() child can escape it'}",
        f"filesystem: {'read-only outside the temp dir (mount namespace)' if iso.get('filesystem', '').startswith('readonly') else 'only the Python prelude blocks writes outside the temp dir'}",
        f"process count: {'at most max_procs, enforced by the kernel' if holds else 'NOT enforced by the kernel here'} "
        f"({iso.get('procs', 'none')}; a fork loop without the prelude made {forked} of {max_procs - 1} allowed "
        f"children)",
    ]
    if root:
        lines.append("running as root: the program keeps root's capabilities; the kernel layers hold against code "
                     "that cannot make raw system calls (ctypes is blocked by the prelude), not against code that can")
    return {"isolation": iso, "root": root,
            "process_limit": {"limit": max_procs, "forked": forked, "holds": holds}, "guarantees": lines}
