"""Containment tests for remit.sandbox: each hostile program yields ok=False with a reason, the caller survives.

Where the kernel layers (namespaces, read-only mounts) are available they are also tested on
their own, with the Python prelude switched off.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from remit.sandbox import run_python, run_tests


@pytest.fixture(scope="module")
def isolation() -> dict:
    return run_python("pass").isolation


def _bwrap() -> bool:
    from remit.sandbox.runner import backend

    return backend() == "bwrap"


# Prints the run's tag (its host temp dir, which is on the command line of every process of the run).
TAG = "import json, sys\nprint(json.loads(sys.orig_argv[-1])['tag'], flush=True)\n"


def test_passing_program_returns_stdout(isolation):
    r = run_python("import math\nprint(math.factorial(5), input())", stdin="hi\n")
    assert r.ok and r.reason == "ok" and r.returncode == 0
    assert r.stdout == "120 hi\n" and r.stderr == ""
    from remit.sandbox import REQUIRED

    assert set(isolation) == {"backend", *REQUIRED} and isolation["backend"] in ("bwrap", "namespaces")


def test_exception_is_an_error_with_the_traceback():
    r = run_python("def f():\n    raise ValueError('boom')\nf()")
    assert not r.ok and r.reason == "error" and r.returncode == 1
    assert "ValueError: boom" in r.stderr and r.detail == "error: ValueError: boom"
    r = run_python("def f(:\n")
    assert not r.ok and r.reason == "error" and "SyntaxError" in r.stderr


def test_infinite_loop_hits_the_wall_clock_timeout():
    t0 = time.perf_counter()
    r = run_python("while True:\n    pass", timeout_s=1.0, cpu_s=60)
    assert not r.ok and r.reason == "timeout" and r.returncode == -9
    assert 0.9 < r.elapsed_s < 4.0 and time.perf_counter() - t0 < 5.0


def test_cpu_limit():
    r = run_python("while True:\n    pass", timeout_s=20.0, cpu_s=1)
    assert not r.ok and r.reason == "cpu_limit", r


def test_memory_hog():
    r = run_python("x = bytearray(3 * 1024 ** 3)\nprint('allocated')", memory_mb=256)
    assert not r.ok and r.reason == "memory_limit" and "allocated" not in r.stdout
    r = run_python("x = []\nwhile True:\n    x.append(' ' * 10 ** 6)", memory_mb=256, timeout_s=10)
    assert not r.ok and r.reason == "memory_limit"


def test_fork_storm_is_blocked():
    r = run_python("import os\nwhile True:\n    os.fork()")
    assert not r.ok and r.reason == "blocked" and "os.fork" in r.stderr
    r = run_python("import subprocess\nsubprocess.run(['echo', 'hi'])")
    assert not r.ok and r.reason == "blocked" and r.stdout == ""
    r = run_python("import multiprocessing")
    assert not r.ok and "ImportError" in r.stderr


def _processes_mentioning(marker: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes():
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_fork_storm_without_prelude_dies_with_the_pid_namespace(isolation):
    if not isolation["pid_namespace"]:
        pytest.skip("no PID namespace here: only the Python prelude stops fork storms")
    code = (TAG + "import os, sys, time\n"
            "for i in range(200):\n    if os.fork() == 0:\n        os.setsid()\n        while True: time.sleep(0.01)\n"
            "time.sleep(60)")
    r = run_python(code, timeout_s=1.5, max_procs=10_000, python_guards=False)
    assert not r.ok and r.reason == "timeout"
    root = r.stdout.split()[0]
    assert root.startswith("/") and not os.path.exists(root)  # temp dir deleted
    time.sleep(0.2)
    assert _processes_mentioning(root) == []  # setsid() did not let any child escape


def test_write_outside_the_temp_dir_is_blocked(tmp_path):
    target = tmp_path / "owned_by_test.txt"
    keep = tmp_path / "keep.txt"
    keep.write_text("original")
    for code in (f"open({str(target)!r}, 'w').write('pwned')",
                 f"import pathlib\npathlib.Path({str(target)!r}).write_text('pwned')",
                 f"import os\nos.remove({str(keep)!r})",
                 f"import os\nos.rename({str(keep)!r}, 'stolen.txt')",
                 f"import os\nos.chdir('/')\nopen({str(target)!r}[1:], 'a').write('pwned')"):
        r = run_python(code)
        # under bubblewrap the sandbox's /tmp is its own (empty): a host /tmp path is not there at all
        assert not r.ok and r.reason in (("blocked", "error") if _bwrap() else ("blocked",)), (code, r)
    assert not target.exists() and keep.read_text() == "original"
    r = run_python("import os\nos.makedirs('a/b')\nopen('a/b/c.txt', 'w').write('hi')\nprint(open('a/b/c.txt').read())")
    assert r.ok and r.stdout == "hi\n"  # the temp dir itself is writable


def test_readonly_mounts_without_prelude(tmp_path, isolation):
    if not isolation["readonly_fs"]:
        pytest.skip("no mount namespace here: only the Python prelude stops writes outside the temp dir")
    target = tmp_path / "owned_by_test.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('pwned')", python_guards=False)
    # bubblewrap does not show the host's /tmp at all; the namespaces fallback shows it read-only
    assert not r.ok and ("Read-only file system" in r.stderr or "No such file or directory" in r.stderr)
    assert not target.exists()
    r = run_python("open('x', 'w').write('ok')\nprint(open('x').read())", python_guards=False)
    assert r.ok and r.stdout == "ok\n"


@pytest.fixture()
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.3)
    yield srv
    srv.close()


def _arrived(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


@pytest.mark.parametrize("guards", [True, False])
def test_network_connection_never_arrives(listener, isolation, guards):
    if not guards and not isolation["network"]:
        pytest.skip("no network namespace here: only the Python prelude blocks sockets")
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hi')\nprint('sent')"
    r = run_python(code, python_guards=guards)
    assert not r.ok and "sent" not in r.stdout
    assert r.reason == ("blocked" if guards else "error")
    assert not _arrived(listener)


def test_output_flooding_is_capped():
    r = run_python("while True:\n    print('x' * 1000)", max_output_bytes=10_000, timeout_s=5)
    assert not r.ok and r.reason == "output_limit" and len(r.stdout) == 10_000 and r.elapsed_s < 4
    r = run_python("import sys\nwhile True:\n    sys.stderr.write('e' * 1000)", max_output_bytes=5_000, timeout_s=5)
    assert not r.ok and r.reason == "output_limit" and len(r.stderr) == 5_000


def test_environment_is_scrubbed_and_temp_dir_removed(monkeypatch):
    monkeypatch.setenv("REMIT_TEST_SECRET", "hunter2")
    r = run_python(TAG + "import os\nprint(sorted(os.environ))")
    assert r.ok
    cwd, keys = r.stdout.splitlines()
    assert "REMIT_TEST_SECRET" not in keys and "hunter2" not in r.stdout
    assert set(eval(keys)) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PYTHONHASHSEED", "LC_CTYPE", "PWD"}
    assert not os.path.exists(cwd)


def test_file_size_limit():
    r = run_python("open('big', 'w').write('x' * (3 << 20))", max_file_mb=1)
    assert not r.ok and "File too large" in r.stderr


def test_run_tests_asserts_and_humaneval_check():
    prog = "def add(a, b):\n    return a + b\n"
    assert run_tests(prog, "assert add(1, 2) == 3\nassert add(-1, 1) == 0").ok
    bad = run_tests(prog, "assert add(1, 2) == 4")
    assert not bad.ok and bad.reason == "error" and "AssertionError" in bad.stderr
    check = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    assert run_tests(prog, check, entry_point="add").ok
    assert not run_tests("def add(a, b):\n    return a - b\n", check, entry_point="add").ok


def _kernel_process_limit(isolation) -> bool:
    return isolation["pids_cgroup"] or os.geteuid() != 0  # RLIMIT_NPROC, which root ignores


def test_process_limit_holds_without_prelude_even_as_root(isolation):
    if not _kernel_process_limit(isolation):
        pytest.skip("no kernel process limit here: running as root without a writable pids cgroup, RLIMIT_NPROC "
                    "is ignored")
    from remit.sandbox.diagnose import _FORK_COUNT

    r = run_python(_FORK_COUNT, max_procs=8, python_guards=False, timeout_s=10)
    forked, err = r.stdout.split()
    assert err == "EAGAIN" and int(forked) <= 7, r  # the program + 7 children = max_procs
    if isolation["pids_cgroup"]:
        assert int(forked) == 7  # exactly the limit: the cgroup counts this run's processes only


def test_fork_bomb_as_root_is_contained_and_leaves_nothing(isolation):
    if not _kernel_process_limit(isolation):
        pytest.skip("no kernel process limit here")
    from remit.sandbox.cgroup import pids_hierarchy

    t0 = time.perf_counter()
    r = run_python(TAG + "import os\nwhile True:\n    try:\n        os.fork()\n"
                   "    except OSError:\n        pass", max_procs=64, python_guards=False, timeout_s=2)
    assert not r.ok and r.reason in ("timeout", "cpu_limit", "error") and time.perf_counter() - t0 < 6
    root = r.stdout.split()[0]  # the temp dir is in every sandbox process's command line
    assert root.startswith("/")
    time.sleep(0.2)
    assert _processes_mentioning(root) == []
    base = pids_hierarchy()
    if base is not None:
        assert not list(base.glob(f"remit-sandbox-{os.getpid()}-*"))  # every cgroup removed
    import subprocess

    assert subprocess.run(["true"]).returncode == 0  # the caller can still start processes


def test_diagnose_reports_what_was_measured(isolation):
    from remit.sandbox import diagnose

    d = diagnose(max_procs=4)
    assert d["backend"] == isolation["backend"] and d["root"] == (os.geteuid() == 0)
    assert d["layers"] == {k: v for k, v in isolation.items() if k != "backend"}
    assert d["missing"] == [k for k, v in d["layers"].items() if not v]
    assert d["process_limit"]["holds"] == _kernel_process_limit(isolation)
    line = next(x for x in d["guarantees"] if x.startswith("process count:"))
    assert ("NOT enforced" in line) != d["process_limit"]["holds"]
