"""The sandbox's seccomp filter, as a classic-BPF program built here (no libseccomp needed).

``filter_program()`` returns the bytes of a ``struct sock_filter`` array that bubblewrap loads with
``--seccomp FD`` (and that the namespaces fallback installs with ``prctl(PR_SET_SECCOMP)``). It lets
every system call through except those a contained program never needs and an escape does:
mounting and namespaces (``mount``, ``umount2``, ``pivot_root``, ``setns``, ``unshare``, the new mount
API, ``clone`` with a ``CLONE_NEW*`` flag; ``clone3`` answers ENOSYS so that libc falls back to
``clone``), looking at other processes (``ptrace``, ``process_vm_*``, ``kcmp``), the kernel's own
interfaces (``bpf``, ``keyctl``, modules, ``kexec``, ``reboot``, ``perf_event_open``, ``userfaultfd``,
``io_uring``, ...). Denied calls fail with EPERM; a call made with another architecture's
convention (x32, or a 32-bit ABI) kills the process. Tables exist for x86_64 and aarch64; on
another architecture :func:`filter_program` returns None and ``diagnose()`` reports no seccomp.
"""

from __future__ import annotations

import errno
import platform
import struct

__all__ = ["DENIED", "filter_program", "syscall_table"]

DENIED = ("mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "ptrace", "bpf", "keyctl", "add_key",
          "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
          "swapon", "swapoff", "syslog", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
          "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "quotactl", "quotactl_fd", "fsopen",
          "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "process_vm_readv",
          "process_vm_writev", "lookup_dcookie", "vhangup", "sethostname", "setdomainname", "io_uring_setup",
          "io_uring_enter", "io_uring_register", "kcmp", "fanotify_init", "nfsservctl",
          # x86_64 only
          "iopl", "ioperm", "uselib", "_sysctl", "sysfs", "ustat", "create_module", "get_kernel_syms",
          "query_module")

# (AUDIT_ARCH, {name: number}) from the kernel's unistd headers (checked against libseccomp in the tests).
_X86_64 = (0xC000003E, {
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "setns": 308, "unshare": 272, "ptrace": 101,
    "bpf": 321, "keyctl": 250, "add_key": 248, "request_key": 249, "kexec_load": 246, "kexec_file_load": 320,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168,
    "syslog": 103, "perf_event_open": 298, "userfaultfd": 323, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "acct": 163, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159, "quotactl": 179,
    "quotactl_fd": 443, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "process_vm_readv": 310, "process_vm_writev": 311,
    "lookup_dcookie": 212, "vhangup": 153, "sethostname": 170, "setdomainname": 171, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "kcmp": 312, "fanotify_init": 300, "nfsservctl": 180,
    "iopl": 172, "ioperm": 173, "uselib": 134, "_sysctl": 156, "sysfs": 139, "ustat": 136, "create_module": 174,
    "get_kernel_syms": 177, "query_module": 178, "clone": 56, "clone3": 435})
_AARCH64 = (0xC00000B7, {
    "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "setns": 268, "unshare": 97, "ptrace": 117,
    "bpf": 280, "keyctl": 219, "add_key": 217, "request_key": 218, "kexec_load": 104, "kexec_file_load": 294,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225,
    "syslog": 116, "perf_event_open": 241, "userfaultfd": 282, "open_by_handle_at": 265, "name_to_handle_at": 264,
    "acct": 89, "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171, "quotactl": 60,
    "quotactl_fd": 443, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "process_vm_readv": 270, "process_vm_writev": 271,
    "lookup_dcookie": 18, "vhangup": 58, "sethostname": 161, "setdomainname": 162, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "kcmp": 272, "fanotify_init": 262, "nfsservctl": 42,
    "clone": 220, "clone3": 435})
_TABLES = {"x86_64": _X86_64, "amd64": _X86_64, "aarch64": _AARCH64, "arm64": _AARCH64}

CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
# NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET NEWTIME

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_X32_BIT = 0x40000000


def syscall_table(machine: str | None = None) -> tuple[int, dict[str, int]] | None:
    return _TABLES.get((machine or platform.machine()).lower())


def _assemble(code: list[tuple]) -> bytes:
    """Classic BPF from ``(op, k)``, ``(op, k, true_label, false_label)`` and ``"label"`` entries."""
    where, n = {}, 0
    for ins in code:
        if isinstance(ins, str):
            where[ins] = n
        else:
            n += 1
    out, i = [], 0
    for ins in code:
        if isinstance(ins, str):
            continue
        op, k, *targets = ins
        jt, jf = (where[t] - i - 1 if t else 0 for t in (targets or [None, None]))
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise ValueError("seccomp: jump out of range")
        out.append(struct.pack("=HBBI", op, jt, jf, k))
        i += 1
    return b"".join(out)


def filter_program(machine: str | None = None) -> bytes | None:
    """The BPF program (``struct sock_filter[]``, native byte order) for this machine, or None."""
    table = syscall_table(machine)
    if table is None:
        return None
    arch, nrs = table
    code: list[tuple | str] = [(_LD_W_ABS, 4), (_JEQ, arch, None, "kill"), (_LD_W_ABS, 0)]  # seccomp_data.arch, .nr
    if arch == _X86_64[0]:
        code.append((_JGE, _X32_BIT, "kill", None))
    code += [(_JEQ, nr, "deny", None) for nr in sorted({nrs[n] for n in DENIED if n in nrs})]
    code += [(_JEQ, nrs["clone"], "clone", None), (_JEQ, nrs["clone3"], "enosys", None), (_RET, _ALLOW),
             "clone", (_LD_W_ABS, 16), (_JSET, CLONE_NEW, "deny", None), (_RET, _ALLOW),  # args[0], low half
             "deny", (_RET, _ERRNO | errno.EPERM), "enosys", (_RET, _ERRNO | errno.ENOSYS),
             "kill", (_RET, _KILL_PROCESS)]
    return _assemble(code)
