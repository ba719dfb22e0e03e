"""Runs INSIDE the sandboxed interpreter (``python -I -S -c <this file> <json>``), before the program.

Not imported by remit: :mod:`remit.sandbox.runner` reads this file's text. Under bubblewrap
(``backend == "bwrap"``) the namespaces, mounts, uid, capabilities and seccomp filter are already in
place and steps 0-1 are skipped. Otherwise (the namespaces fallback), in order it:
0. joins the pids cgroup the caller made (``remit.sandbox.cgroup``), so that every process and
   thread it or the program starts counts against ``pids.max``, root included;
1. enters new network, PID and mount namespaces when the kernel allows it (root or a user
   namespace), remounts every filesystem read-only except the temp working directory (the
   cgroup filesystems included: the program cannot raise its own limit or leave its cgroup);
2. (with a PID namespace) forks so that the program runs as PID 1 of the namespace: when it dies
   every process it made dies; sets ``no_new_privs`` and the seccomp filter where it can;
then, in both cases:
3. sets rlimits (CPU, address space, file size, open files, core; processes when not root);
4. measures every layer from inside (``_layers``) and reports it on the status pipe;
5. installs Python-level guards (sockets, process creation, writes outside the working
   directory, ctypes) and runs the program. Exit codes: 96 = CPU limit (as PID 1, where
   SIGXCPU would be ignored), 97 = blocked by a guard, 98 = MemoryError.
"""

import json
import os
import stat
import sys

# Other imports stay in the step that uses them: this file runs as a script in every sandboxed child (remit
# never imports it), and a step that does not apply (no namespaces, no fork) imports nothing.

CFG = json.loads(sys.argv[1])
ROOT = os.path.realpath(CFG["root"])
BACKEND = CFG.get("backend", "namespaces")
STATUS = {"backend": BACKEND}
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 38, 22, 2
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
    STATUS["pidns"] = True
    if CFG.get("readonly_fs", True):
        STATUS["mounts"] = _readonly_mounts(libc)
    return libc


def _readonly_mounts(libc):
    """Every mount read-only except ROOT (bind-mounted on itself first)."""
    b = os.fsencode
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    if libc.mount(b(ROOT), b(ROOT), None, MS_BIND, None) != 0:
        return False
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
    return failed == 0


def _on_sigxcpu(signum, frame):
    os.write(2, b"CPU time limit exceeded (sandbox limit)\n")
    os._exit(EXIT_CPU)


def _fork(libc):
    """With a PID namespace: the program runs as its PID 1 in a child; this process relays its status."""
    if not STATUS.get("pidns"):
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
        if STATUS.get("mounts"):  # our own mount namespace: a /proc that shows only our PIDs
            libc.mount(b"proc", b"/proc", b"proc", MS_RDONLY | 2 | 4 | 8, None)
        return
    # The parent only relays the program's exit status.
    import resource
    import signal

    os.close(CFG["status_fd"])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _seccomp(libc):
    """no_new_privs, then the caller's BPF filter (``remit.sandbox.seccomp``), where the kernel takes them."""
    import ctypes

    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or not CFG.get("seccomp"):
        return
    prog = bytes.fromhex(CFG["seccomp"])

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    fprog = SockFprog(len(prog) // 8, prog)
    libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)


def _mountinfo():
    """[(mount point, read-only, fs type)] as this process sees them."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            out.append((fields[4].replace("\\040", " "), "ro" in fields[5].split(","), right.split()[0]))
    return out


def _has_socket_files(top, budget=2000):
    for dirpath, _dirs, filenames in os.walk(top):
        for name in filenames:
            budget -= 1
            try:
                if budget < 0 or stat.S_ISSOCK(os.lstat(os.path.join(dirpath, name)).st_mode):
                    return True
            except OSError:
                pass
    return False


def _layers():
    """Each layer of the sandbox as the program will find it: True = enforced (measured here, not assumed)."""
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    caller = CFG.get("caller_ns", {})

    def new_ns(kind):
        try:
            return kind in caller and os.stat(f"/proc/self/ns/{kind}").st_ino != caller[kind]
        except OSError:
            return False

    mounts = _mountinfo()
    writable = [mp for mp, ro, _ in mounts if not ro and mp != ROOT and not mp.startswith("/dev")
                and not (BACKEND == "bwrap" and mp == "/tmp")]
    proc_ro = any(mp == "/proc" and ro for mp, ro, _ in mounts)
    home, keep = CFG.get("caller_home"), set(CFG.get("home_keep", []))
    try:
        home_hidden = not home or set(os.listdir(home)) <= keep
    except OSError:
        home_hidden = True
    try:
        vfs = os.statvfs(ROOT)
        quota_ok = vfs.f_blocks * vfs.f_frsize <= CFG["disk_bytes"] * 1.05 + (1 << 20)
    except OSError:
        quota_ok = False
    in_cgroup = CFG.get("cgroup_joined", False)  # bwrap: the caller moved it there (a cgroup namespace hides the path)
    try:
        with open("/proc/self/cgroup") as f:
            in_cgroup = in_cgroup or "remit-sandbox-" in f.read()
    except OSError:
        pass
    return {
        "unprivileged": int(status["Uid"].split()[1]) != 0 and int(status["CapEff"], 16) == 0
        and int(status["CapPrm"], 16) == 0,
        "no_new_privs": status.get("NoNewPrivs") == "1",
        "seccomp": status.get("Seccomp") == "2",
        "network": new_ns("net"),
        "pid_namespace": new_ns("pid"),
        "readonly_fs": new_ns("mnt") and not writable,
        "private_proc": proc_ro and new_ns("pid"),
        "no_sys": not os.path.exists("/sys") or all(ro for mp, ro, _ in mounts if mp.startswith("/sys")),
        "hidden_host_files": not os.path.exists("/etc/shadow") and home_hidden
        and not any(_has_socket_files(d) for d in ("/run", "/var/run", "/tmp") if os.path.isdir(d)),
        "disk_quota": quota_ok,
        "pids_cgroup": in_cgroup and not any(not ro for _, ro, fs in mounts if fs in ("cgroup", "cgroup2")),
    }


def _report():
    with os.fdopen(CFG["status_fd"], "w") as f:
        f.write(json.dumps({"backend": BACKEND, **_layers()}))


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
        setr(resource.RLIMIT_NPROC, CFG["nproc"] + (BACKEND == "bwrap"))  # + bwrap's init


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
    with open(CFG["program"], encoding="utf-8") as f:
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
    """Move this process into the caller's pids cgroup before anything else runs (under bwrap the caller did)."""
    path = CFG.get("cgroup_procs")
    if path:
        try:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass


def main():
    if BACKEND == "namespaces":
        _join_cgroup()
        libc = None
        if CFG.get("namespaces", True) and sys.platform.startswith("linux"):
            try:
                libc = _namespaces()
            except (OSError, AttributeError):  # no unshare() here: the Python guards still apply
                libc = None
        _fork(libc)
        if libc is not None:
            _seccomp(libc)
        del libc
    os.chdir(ROOT)
    _rlimits()
    _report()
    if CFG.get("python_guards", True):
        _guards()
    _run_program()


main()
