"""Hostile programs that make raw system calls (ctypes, no Python prelude), one per class of escape.

Every program runs with ``python_guards=False``: only the kernel layers (bubblewrap's namespaces, uid
65534 with no capabilities, the seccomp filter, read-only mounts, the tmpfs quota, the pids cgroup)
stand between it and the host. Each asserts on the HOST side that nothing happened. They need every
layer of ``remit.sandbox.REQUIRED`` (CI installs bubblewrap and runs as root) and are skipped, with
the missing layers named, where the machine cannot give them.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from remit.sandbox import REQUIRED, SandboxUnavailableError, missing_layers, require, run_python
from remit.sandbox.seccomp import DENIED, filter_program, syscall_table

kernel_layers = pytest.mark.skipif(bool(missing_layers()),
                                   reason=f"sandbox layers not enforced here: {missing_layers()}")

LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def hostile(code: str, **kw):
    return run_python(LIBC + code, python_guards=False, timeout_s=10, **kw)


@kernel_layers
def test_remount_root_read_write_does_not_reach_the_host(tmp_path):
    target = tmp_path / "pwned.txt"
    r = hostile(f"""
MS_REMOUNT, MS_BIND = 32, 4096
for flags in (MS_REMOUNT, MS_REMOUNT | MS_BIND):
    print("remount", libc.mount(None, b"/", None, flags, None), ctypes.get_errno())
print("tmpfs", libc.mount(b"none", b"/usr", b"tmpfs", 0, None), ctypes.get_errno())
for p in ("/pwned", "/usr/pwned", {str(target)!r}):
    try:
        open(p, "w").write("x"); print("WROTE", p)
    except OSError as e:
        print("refused", p, e.errno)
print("uid", os.getuid(), os.geteuid())
""")
    assert r.ok, r.stderr
    assert "WROTE" not in r.stdout and not target.exists()
    assert "remount -1 1" in r.stdout and "tmpfs -1 1" in r.stdout  # EPERM
    assert "uid 65534 65534" in r.stdout


@kernel_layers
def test_unmounting_proc_does_not_show_the_caller(monkeypatch):
    monkeypatch.setenv("REMIT_HOSTILE_SECRET", "s3cr3t-in-the-caller-env")
    r = hostile(f"""
print("umount", libc.umount2(b"/proc", 2), ctypes.get_errno())
found = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + [{os.getpid()}, {os.getppid()}, 1]:
    for what in ("environ", "mem", "cmdline"):
        try:
            with open(f"/proc/{{pid}}/{{what}}", "rb") as f:
                found.append(f.read(1 << 16))
        except OSError:
            pass
print("s3cr3t" in repr(found), sorted(p for p in os.listdir("/proc") if p.isdigit()))
buf = ctypes.create_string_buffer(64)
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 64)
print("vm_readv", libc.process_vm_readv({os.getpid()}, iov, 1, iov, 1, 0), ctypes.get_errno())
print("ptrace", libc.ptrace(16, {os.getpid()}, None, None), ctypes.get_errno())
""")
    assert r.ok, r.stderr
    assert "umount -1 1" in r.stdout
    assert "s3cr3t" not in r.stdout.replace("False", "")
    line = next(x for x in r.stdout.splitlines() if x.startswith(("True", "False")))
    assert line.startswith("False") and line.endswith("['1', '2']")  # bwrap's init and the program only
    assert "vm_readv -1" in r.stdout and "ptrace -1" in r.stdout


@kernel_layers
def test_joining_host_namespaces_is_refused():
    r = hostile(f"""
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x20000, 0x40000000
for pid in ("1", "self", "{os.getpid()}"):
    for ns in ("net", "mnt", "pid", "user"):
        try:
            fd = os.open(f"/proc/{{pid}}/ns/{{ns}}", os.O_RDONLY)
        except OSError:
            continue
        print("setns", pid, ns, libc.setns(fd, 0), ctypes.get_errno())
for flags in (CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNS):
    print("unshare", libc.unshare(flags), ctypes.get_errno())
    print("clone", libc.syscall(56 if os.uname().machine == "x86_64" else 220, flags | 17, 0, 0, 0, 0),
          ctypes.get_errno())
""")
    assert r.ok, r.stderr
    results = [line.split()[-2:] for line in r.stdout.splitlines()]
    assert results and all(rc == "-1" for rc, _ in results), r.stdout
    assert sum(line.startswith("unshare") for line in r.stdout.splitlines()) == 4


@kernel_layers
def test_raising_pids_max_is_impossible_and_the_limit_holds():
    r = hostile("""
import errno
wrote = []
for root, dirs, files in os.walk("/sys"):
    for f in files:
        if f in ("pids.max", "cgroup.procs"):
            try:
                open(os.path.join(root, f), "w").write("max"); wrote.append(root)
            except OSError:
                pass
os.makedirs("/tmp/cg", exist_ok=True)
print("mount", libc.mount(b"cgroup", b"/tmp/cg", b"cgroup", 0, b"pids"), ctypes.get_errno())
print("mount2", libc.mount(b"cgroup2", b"/tmp/cg", b"cgroup2", 0, None), ctypes.get_errno())
print("wrote", wrote)
n = 0
try:
    while n < 100:
        if os.fork() == 0:
            import time; time.sleep(20); os._exit(0)
        n += 1
except OSError as e:
    print("forked", n, errno.errorcode[e.errno])
""", max_procs=4)
    assert "mount -1 1" in r.stdout and "mount2 -1 1" in r.stdout and "wrote []" in r.stdout, r.stdout
    assert "forked 3 EAGAIN" in r.stdout  # the program + 3 children = max_procs


@kernel_layers
def test_host_unix_sockets_are_unreachable(tmp_path):
    path = tmp_path / "host.sock"
    arrived = []
    servers = []
    for addr in (str(path), f"\0remit-hostile-{os.getpid()}"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(addr)
        s.listen(4)
        s.settimeout(0.2)
        servers.append(s)

    def accept_all():
        for s in servers:
            try:
                s.accept()[0].close()
                arrived.append(s)
            except OSError:
                pass

    r = hostile(f"""
import socket
for addr in ({str(path)!r}, "\\0remit-hostile-{os.getpid()}", "/run/systemd/private", "/var/run/docker.sock"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(addr); print("CONNECTED", repr(addr))
    except OSError as e:
        print("refused", e.errno)
""")
    t = threading.Thread(target=accept_all)
    t.start()
    t.join()
    for s in servers:
        s.close()
    assert r.ok, r.stderr
    assert "CONNECTED" not in r.stdout and r.stdout.count("refused") == 4 and not arrived


@kernel_layers
def test_kernel_settings_are_not_writable():
    r = hostile("""
for p in ("/proc/sys/vm/swappiness", "/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger",
          "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/fs/cgroup/pids/pids.max"):
    try:
        fd = os.open(p, os.O_WRONLY)  # opening for writing is enough to prove it; nothing is written
        os.close(fd); print("WRITABLE", p)
    except OSError as e:
        print("refused", e.errno)
print(os.path.exists("/sys"))
""")
    assert r.ok, r.stderr
    assert "WRITABLE" not in r.stdout and r.stdout.count("refused") == 5


@kernel_layers
def test_disk_quota_is_total_not_per_file():
    r = hostile("""
total = 0
try:
    for i in range(40):
        for d in ("/tmp", "."):
            with open(f"{d}/f{i}{d[-1]}", "wb") as f:
                f.write(b"x" * (4 << 20))
            total += 4 << 20
except OSError as e:
    print("stopped", e.errno)
print("total", total >> 20)
""", max_file_mb=10, max_disk_mb=16)
    assert "stopped 28" in r.stdout, r  # ENOSPC
    assert int(r.stdout.split("total")[1]) <= 16


@kernel_layers
def test_shadow_and_the_callers_home_are_hidden():
    secret = Path.home() / f".remit-hostile-secret-{os.getpid()}"
    secret.write_text("home-secret-value")
    try:
        r = hostile(f"""
for p in ("/etc/shadow", "/etc/gshadow", {str(secret)!r}):
    try:
        print("READ", open(p).read())
    except OSError as e:
        print("refused", e.errno)
for d in ("/home", "/root", {str(Path.home())!r}):
    try:
        print(d, os.listdir(d))
    except OSError:
        print(d, "absent")
""")
    finally:
        secret.unlink()
    assert r.ok, r.stderr
    assert "READ" not in r.stdout and "home-secret-value" not in r.stdout and secret.name not in r.stdout


def test_seccomp_table_matches_libseccomp():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("seccomp")
    if name is None:
        pytest.skip("libseccomp is not installed")
    lib = ctypes.CDLL(name)
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    for machine in ("x86_64", "aarch64"):
        arch, table = syscall_table(machine)
        for sc, nr in table.items():
            assert lib.seccomp_syscall_resolve_name_arch(arch, sc.encode()) == nr, (machine, sc)
    assert set(DENIED) <= set(syscall_table("x86_64")[1])
    assert len(filter_program("x86_64")) % 8 == 0 and filter_program("sparc") is None


def test_require_refuses_without_a_layer_unless_opted_out(monkeypatch, capsys):
    import sys

    d = sys.modules["remit.sandbox.diagnose"]
    monkeypatch.setattr(d, "_isolation", lambda: {k: True for k in REQUIRED})
    require()  # every layer: no error
    monkeypatch.setattr(d, "_isolation", lambda: {k: k != "seccomp" for k in REQUIRED})
    with pytest.raises(SandboxUnavailableError, match="does not enforce seccomp.*sandbox_unenforced_ok=true"):
        require()
    require(unenforced_ok=True)
    assert "WARNING" in capsys.readouterr().err
