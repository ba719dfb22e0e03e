"""Run untrusted (model-written) Python code in a contained subprocess.

    from remit.sandbox import run_python, run_tests
    r = run_python("print(1 + 1)")                  # r.ok, r.reason, r.stdout == "2\\n"
    r = run_tests(solution_code, "assert f(2) == 4")  # ok only if every assert passes

The code never runs in the calling process. What is enforced, and by whom:

- by the caller: a wall-clock timeout that SIGKILLs the child's whole process group; an
  output cap (stdout and stderr are read in a loop, the child is killed when one exceeds
  ``max_output_bytes``); a fresh temp folder for the program, deleted afterwards; a scrubbed
  environment (PATH, LANG, LC_ALL, HOME/TMPDIR = the working directory); ``python -I -S``.
- by the kernel, always: RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE, RLIMIT_NOFILE,
  RLIMIT_CORE=0, and RLIMIT_NPROC when not running as root (root ignores it).
- by the kernel, where a pids cgroup can be created (``remit.sandbox.cgroup``; typically as
  root, in containers and on GPU boxes): at most ``max_procs`` processes and threads for the
  program and everything it starts, root included, all killed at the end.
- by the kernel through bubblewrap (``remit.sandbox.bwrap``, the default wherever ``bwrap`` can
  build the sandbox): uid 65534 in its own user namespace with no capabilities, ``no_new_privs``,
  the seccomp filter of ``remit.sandbox.seccomp``, its own network/PID/IPC/UTS namespaces, a
  read-only root holding only /usr and the interpreter, a private read-only /proc, no /sys, no
  home folders, no host /tmp, /run or /var, and one tmpfs of ``max_disk_mb`` as its working
  directory (the quota of everything it writes).
- without bubblewrap (the fallback, ``backend == "namespaces"``), where ``unshare`` is permitted:
  network, PID and mount namespaces, every mount but the temp folder re-mounted read-only,
  ``no_new_privs`` and the seccomp filter; the program keeps the caller's uid (root keeps root's
  capabilities), sees the host's files and has no total disk quota.
- by a Python prelude, always (a speed bump, not a wall: a program with ctypes gets around it):
  sockets, process creation (fork/exec/subprocess/multiprocessing), ctypes, and opening files
  for writing outside the working directory raise ``SandboxViolation``.

``SandboxResult.isolation`` holds the backend and each layer as measured from inside the run;
``remit.sandbox.diagnose()`` summarises them and ``remit.sandbox.require()`` refuses to run model
code where a layer is missing (unless the stage's config says ``sandbox_unenforced_ok=true``).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit.sandbox import bwrap, seccomp
from remit.sandbox.cgroup import PidsCgroup

_BOOTSTRAP = (Path(__file__).with_name("_bootstrap.py")).read_text(encoding="utf-8")
EXIT_CPU, EXIT_BLOCKED, EXIT_MEMORY = 96, 97, 98


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited with status 0 within every limit
    reason: str  # "ok", "timeout", "cpu_limit", "memory_limit", "output_limit", "blocked", "error", "killed"
    returncode: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    isolation: dict[str, Any] = field(default_factory=dict)  # "backend" and each layer: True = enforced

    @property
    def detail(self) -> str:
        """One line for logs: the reason plus the last line of stderr."""
        tail = self.stderr.strip().splitlines()[-1] if self.stderr.strip() else ""
        return f"{self.reason}: {tail}" if tail else self.reason


def _env(tmp: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": tmp,
            "TMPDIR": tmp, "PYTHONHASHSEED": "0"}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exited(proc: subprocess.Popen) -> bool:
    """True once the child has exited, without reaping it (so its process group id stays reserved)."""
    if not hasattr(os, "waitid"):  # macOS: reap it; the final process-group kill then races pid reuse
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _caller_ns() -> dict[str, int]:
    out = {}
    for kind in ("net", "pid", "mnt", "user"):
        try:
            out[kind] = os.stat(f"/proc/self/ns/{kind}").st_ino
        except OSError:
            pass
    return out


def _home_keep(home: str) -> list[str]:
    """Names in the caller's home that the sandbox shows on purpose: the interpreter's prefix, if it lives there."""
    keep = []
    for p in bwrap.python_binds():
        rel = os.path.relpath(p, home)
        if not rel.startswith(".."):
            keep.append(rel.split(os.sep)[0])
    return keep


def backend() -> str:
    """"bwrap" where bubblewrap can build the sandbox here, else "namespaces" (the Python fallback)."""
    return "bwrap" if bwrap.available()[0] else "namespaces"


def run_python(code: str, *, stdin: str | None = None, timeout_s: float = 5.0, cpu_s: int | None = None,
               memory_mb: int = 512, max_file_mb: int = 10, max_disk_mb: int = 64, max_output_bytes: int = 64_000,
               max_procs: int = 1, namespaces: bool = True, readonly_fs: bool = True,
               python_guards: bool = True) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a contained child interpreter; never raises for bad code.

    ``cpu_s`` defaults to ``ceil(timeout_s)``; ``max_procs`` <= 1 forbids starting processes
    (fork storms), larger values allow them: at most ``max_procs`` processes and threads, the
    program included, with a pids cgroup (any user, root included), else by RLIMIT_NPROC when not
    root; every one is killed at the end (PID namespace, process group, cgroup). ``max_disk_mb`` caps
    everything the run writes (bubblewrap: the size of its /tmp). ``namespaces=False`` runs without
    bubblewrap and without ``unshare`` (``readonly_fs`` applies to the fallback only);
    ``python_guards=False`` skips the Python prelude (to test the kernel layers on their own).
    """
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="remit-sandbox-")
    use_bwrap = namespaces and backend() == "bwrap"
    status_r, status_w = os.pipe()
    seccomp_r = -1
    proc = None
    # + 1: the bootstrap that relays the exit status of the program (PID 1 of its namespace); under
    # bubblewrap + 2: bwrap itself and its init
    cgroup = PidsCgroup.create(max(1, int(max_procs)) + (2 if use_bwrap else 1))
    try:
        Path(tmp, "main.py").write_text(code, encoding="utf-8")
        stdin_path = Path(tmp, ".stdin")
        stdin_path.write_text(stdin or "", encoding="utf-8")
        home = os.path.expanduser("~")
        cfg = {"root": bwrap.INSIDE_WORK if use_bwrap else tmp, "tag": tmp,
               "program": f"{bwrap.INSIDE_DIR}/main.py" if use_bwrap else str(Path(tmp, "main.py")),
               "backend": "bwrap" if use_bwrap else "namespaces", "status_fd": status_w,
               "cpu_s": int(cpu_s or max(1, -(-timeout_s // 1))), "memory_bytes": int(memory_mb) << 20,
               "file_bytes": int(max_file_mb) << 20, "disk_bytes": int(max_disk_mb) << 20,
               "nproc": max(1, int(max_procs)), "allow_procs": max_procs > 1, "namespaces": namespaces,
               "readonly_fs": readonly_fs, "python_guards": python_guards, "caller_ns": _caller_ns(),
               "caller_home": home, "home_keep": _home_keep(home),
               "cgroup_procs": cgroup.procs_file if cgroup is not None and not use_bwrap else None,
               "cgroup_joined": cgroup is not None and use_bwrap}
        fds = [status_w]
        program = seccomp.filter_program()
        if use_bwrap:
            prefix = bwrap.argv(tmp, disk_bytes=int(max_disk_mb) << 20, env=_env(bwrap.INSIDE_WORK),
                                seccomp_fd=None if program is None else _pipe_with(program))
            if program is not None:
                seccomp_r = int(prefix[prefix.index("--seccomp") + 1])
                fds.append(seccomp_r)
            if cgroup is not None:  # bwrap and everything it starts join the pids cgroup before bwrap runs
                prefix = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs_file] + prefix
            cmd = prefix + [os.path.realpath(sys.executable)]
        else:
            cfg["seccomp"] = program.hex() if program is not None else ""
            cmd = [sys.executable]
        cmd += ["-I", "-S", "-c", _BOOTSTRAP, json.dumps(cfg)]
        with open(stdin_path, "rb") as fin:
            proc = subprocess.Popen(cmd, cwd=tmp, env=_env(tmp), stdin=fin, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=fds, start_new_session=True, close_fds=True)
        for fd in (status_w, seccomp_r):
            if fd >= 0:
                os.close(fd)
        status_w = seccomp_r = -1
        out, err, timed_out, flooded = _collect(proc, t0 + timeout_s, max_output_bytes)
        while not _exited(proc) and time.perf_counter() < t0 + timeout_s:
            time.sleep(0.005)
        timed_out = timed_out or not _exited(proc)
        _kill_group(proc.pid)  # leftovers (and the child itself on timeout), before reaping frees the pgid
        returncode = proc.wait()
        if use_bwrap and 128 < returncode < 128 + 65:  # bwrap reports a program killed by signal N as 128 + N
            returncode = 128 - returncode
        isolation = _read_status(status_r)
    finally:
        if proc is not None and proc.returncode is None:
            _kill_group(proc.pid)
            proc.wait()
        if cgroup is not None:  # processes that left the process group (setsid) die here
            cgroup.close()
        for fd in (status_r, status_w, seccomp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    reason = _reason(returncode, timed_out, flooded, stderr)
    return SandboxResult(reason == "ok", reason, returncode, stdout, stderr, time.perf_counter() - t0, isolation)


def _pipe_with(data: bytes) -> int:
    """The read end of a pipe holding ``data`` (closed for writing): what bwrap reads ``--seccomp`` from."""
    r, w = os.pipe()
    try:
        os.write(w, data)  # a few hundred bytes: far below the pipe's buffer
    finally:
        os.close(w)
    return r


def _collect(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Read stdout/stderr until EOF, the deadline, or more than ``cap`` bytes on one stream."""
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for f in bufs:
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    timed_out = flooded = False
    try:
        while sel.get_map():
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 0.1)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = bufs[key.fileobj]
                buf += chunk
                if len(buf) > cap:
                    del buf[cap:]
                    flooded = True
            if flooded:
                break
    finally:
        sel.close()
        if timed_out or flooded:
            _kill_group(proc.pid)
        for f in bufs:
            f.close()
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), timed_out, flooded


def _read_status(fd: int) -> dict[str, str]:
    try:
        os.set_blocking(fd, False)
        data = os.read(fd, 4096)
        return json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}


def _reason(returncode: int, timed_out: bool, flooded: bool, stderr: str) -> str:
    if flooded:
        return "output_limit"
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if returncode in (-signal.SIGXCPU, EXIT_CPU):
        return "cpu_limit"
    if returncode == EXIT_MEMORY or "MemoryError" in stderr[-2000:]:
        return "memory_limit"
    if returncode == EXIT_BLOCKED:
        return "blocked"
    if returncode < 0:
        return "killed"
    return "error"


def run_tests(program: str, test_code: str, *, entry_point: str | None = None, timeout_s: float = 10.0,
              **limits) -> SandboxResult:
    """Run ``program`` followed by ``test_code`` (asserts, or HumanEval's ``def check(candidate)``).

    With ``entry_point`` (HumanEval) and a ``check`` function in ``test_code``, calls
    ``check(entry_point)``. ``ok`` is True only if the whole script exits cleanly.
    """
    script = f"{program}\n\n{test_code}\n"
    if entry_point:
        script += f"\ncheck({entry_point})\n"
    return run_python(script, timeout_s=timeout_s, **limits)
