"""Runs INSIDE the sandboxed interpreter (``python -I -S -c <this file> <json>``), before the program.

Not imported by remit: :mod:`remit.sandbox.runner` reads this file's text. In order it:
0. joins the pids cgroup the caller made (``remit.sandbox.cgroup``), so that every process and
   thread it or the program starts counts against ``pids.max``, root included;
1. enters new network, PID and mount namespaces when the kernel allows it (root or a user
   namespace), remounts every filesystem read-only except the temp working directory (the
   cgroup filesystems included: the program cannot raise its own limit or leave its cgroup);
2. reports what applied on the status pipe, then (with a PID namespace) forks so that the
   program runs as PID 1 of the namespace: when it dies every process it made dies;
3. sets rlimits (CPU, address space, file size, open files, core; processes when not root);
4. installs Python-level guards (sockets, process creation, writes outside the working
   directory, ctypes) and runs ``main.py``. Exit codes: 96 = CPU limit (as PID 1, where
   SIGXCPU would be ignored), 97 = blocked by a guard, 98 = MemoryError.
"""

import json
import os
import sys

# Other imports stay in the step that uses them: this file runs as a script in every sandboxed child (remit
# never imports it), and a step that does not apply (no namespaces, no fork) imports nothing.

CFG = json.loads(sys.argv[1])
ROOT = os.path.realpath(CFG["root"])
STATUS = {"network": "python-guard", "pid": "none", "filesystem": "python-guard", "procs": "none"}
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
EXIT_BLOCKED, EXIT_MEMORY, EXIT_CPU = 97, 98, 96


def _namespaces():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(flags) != 0:
        if libc.unshare(flags | CLONE_NEWUSER) != 0:
            return libc
        try:  # keep our own uid/gid inside the user namespace
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"{gid} {gid} 1")
        except OSError:
            pass
    STATUS["network"] = "netns+python-guard"
    STATUS["pid"] = "pidns"
    if CFG.get("readonly_fs", True):
        _readonly_mounts(libc)
    return libc


def _readonly_mounts(libc):
    """Every mount read-only except ROOT (bind-mounted on itself first)."""
    b = os.fsencode
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return
    if libc.mount(b(ROOT), b(ROOT), None, MS_BIND, None) != 0:
        return
    os.chdir(ROOT)  # the old cwd still points below the bind mount, into what becomes read-only
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    failed = 0
    for mp in points:
        if mp == ROOT or mp.startswith("/proc") or (mp.startswith("/sys") and not mp.startswith("/sys/fs/cgroup")):
            continue
        # Keep the mount's other flags (nosuid/nodev/noexec): the kernel refuses to drop locked ones.
        st = os.statvfs(mp) if os.path.exists(mp) else None
        extra = st.f_flag & (2 | 4 | 8 | 1024 | 2048) if st else 0  # nosuid nodev noexec noatime nodiratime
        if libc.mount(None, b(mp), None, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, None) != 0:
            failed += 1
    STATUS["filesystem"] = "readonly-mounts+python-guard" if failed == 0 else "partial-readonly-mounts+python-guard"


def _on_sigxcpu(signum, frame):
    os.write(2, b"CPU time limit exceeded (sandbox limit)\n")
    os._exit(EXIT_CPU)


def _status_and_fork(libc):
    with os.fdopen(CFG["status_fd"], "w") as f:
        f.write(json.dumps(STATUS))
    if STATUS["pid"] != "pidns":
        return
    pid = os.fork()
    if pid == 0:
        # Our parent killed (by the caller's timeout) -> we die too, and with us the whole namespace.
        # (getppid() is 0 inside the new namespace, so the usual re-check is impossible; the caller's
        # process-group kill covers the tiny window before prctl.)
        libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        # As PID 1 of its namespace the program ignores signals it has no handler for, SIGXCPU included.
        import signal

        signal.signal(signal.SIGXCPU, _on_sigxcpu)
        if STATUS["filesystem"] != "python-guard":  # our own mount namespace: a /proc that shows only our PIDs
            libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8, None)
        return
    # The parent only relays the program's exit status.
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _rlimits():
    import resource

    def setr(which, value, slack=0):
        if value is None:
            return
        _, hard = resource.getrlimit(which)
        hard = value + slack if hard == resource.RLIM_INFINITY else min(value + slack, hard)
        resource.setrlimit(which, (min(value, hard), hard))

    setr(resource.RLIMIT_CORE, 0)
    setr(resource.RLIMIT_NOFILE, 64)
    setr(resource.RLIMIT_CPU, CFG["cpu_s"], slack=1)  # SIGXCPU at the soft limit, SIGKILL one second later
    setr(resource.RLIMIT_AS, CFG["memory_bytes"])
    setr(resource.RLIMIT_FSIZE, CFG["file_bytes"])
    if os.getuid() != 0:  # root ignores RLIMIT_NPROC, and it counts all of the user's processes
        setr(resource.RLIMIT_NPROC, CFG["nproc"])


class SandboxViolation(PermissionError):
    pass


def _guards():
    import _io
    import builtins
    import io
    import posix

    def blocked(what):
        def deny(*args, **kwargs):
            raise SandboxViolation(f"sandbox: {what} is not allowed")
        return deny

    if not CFG["allow_procs"]:
        names = ["fork", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp", "kill", "killpg", "setsid",
                 "setpgid", "register_at_fork"] + [n for n in dir(os) if n.startswith(("exec", "spawn"))]
        for mod in (os, posix):
            for n in names:
                if hasattr(mod, n):
                    setattr(mod, n, blocked(f"process control (os.{n})"))
        import _posixsubprocess

        _posixsubprocess.fork_exec = blocked("starting a process")

    import socket

    for n in ("socket", "create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo"):
        setattr(socket, n, blocked("network access"))
    import _socket

    _socket.socket = blocked("network access")

    def inside(path):
        if isinstance(path, int):
            return True
        p = os.path.realpath(os.fsdecode(path))
        return p == ROOT or p.startswith(ROOT + os.sep) or p in ("/dev/null", "/dev/stdout", "/dev/stderr")

    real_open, real_os_open = _io.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in str(mode) for c in "wax+") and not inside(file):
            raise SandboxViolation(f"sandbox: writing outside the working directory ({file!r}) is not allowed")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND) and not inside(path):
            raise SandboxViolation(f"sandbox: writing outside the working directory ({path!r}) is not allowed")
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = io.open = _io.open = guarded_open
    os.open = posix.open = guarded_os_open

    def guard_paths(name, n_paths):
        real = getattr(os, name)

        def fn(*args, **kwargs):
            for p in args[:n_paths]:
                if not inside(p):
                    raise SandboxViolation(f"sandbox: os.{name}({p!r}) outside the working directory is not allowed")
            return real(*args, **kwargs)
        setattr(os, name, fn)
        setattr(posix, name, fn)

    for name, n in [("remove", 1), ("unlink", 1), ("rmdir", 1), ("mkdir", 1), ("rename", 2), ("replace", 2),
                    ("symlink", 2), ("link", 2), ("chmod", 1), ("chown", 1), ("lchown", 1), ("truncate", 1),
                    ("utime", 1), ("mkfifo", 1), ("mknod", 1), ("chroot", 1)]:
        if hasattr(os, name):
            guard_paths(name, n)

    class _Blocker:
        names = {"ctypes", "_ctypes", "multiprocessing", "_multiprocessing", "cffi"}

        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            if fullname.split(".")[0] in cls.names:
                raise ImportError(f"sandbox: importing {fullname} is not allowed")
            return None

    for n in list(sys.modules):
        if n.split(".")[0] in _Blocker.names:
            del sys.modules[n]
    sys.meta_path.insert(0, _Blocker)


def _run_program():
    with open(os.path.join(ROOT, "main.py"), encoding="utf-8") as f:
        source = f.read()
    sys.argv = ["main.py"]
    g = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
    try:
        code = compile(source, "main.py", "exec")
    except SyntaxError:
        import traceback

        traceback.print_exc()
        sys.exit(1)
    try:
        exec(code, g)
    except SandboxViolation as e:
        print(f"SandboxViolation: {e}", file=sys.stderr)
        sys.exit(EXIT_BLOCKED)
    except MemoryError:
        print("MemoryError: the program ran out of memory (sandbox limit)", file=sys.stderr)
        sys.exit(EXIT_MEMORY)


def _join_cgroup():
    """Move this process into the caller's pids cgroup before anything else runs."""
    path = CFG.get("cgroup_procs")
    if path:
        try:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
            STATUS["procs"] = "pids-cgroup"
        except OSError:
            pass
    if STATUS["procs"] == "none" and os.getuid() != 0:
        STATUS["procs"] = "rlimit-nproc"  # set in _rlimits; root ignores it
    if CFG["python_guards"] and not CFG["allow_procs"]:
        STATUS["procs"] += "+python-guard"


def main():
    _join_cgroup()
    libc = None
    if CFG.get("namespaces", True) and sys.platform.startswith("linux"):
        try:
            libc = _namespaces()
        except (OSError, AttributeError):  # no unshare() here: the Python guards still apply
            libc = None
    _status_and_fork(libc)
    del libc
    _rlimits()
    if CFG.get("python_guards", True):
        _guards()
    _run_program()


main()
