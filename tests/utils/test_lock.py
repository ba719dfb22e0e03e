"""One run per output folder: the lock is exclusive across processes, dies with its holder, names it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remit.errors import ConfigError, OutDirBusyError
from remit.utils.lock import ensure_out_dir, holder, lock_path, locks_out_dir, out_dir_lock

REPO = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time\nfrom remit.utils.lock import out_dir_lock\n"
        "with out_dir_lock(sys.argv[1], 'midtrain'):\n    print('held', flush=True)\n    time.sleep(60)\n")


def _holder_process(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_fails_at_once_naming_folder_and_process(tmp_path):
    out = tmp_path / "run"
    proc = _holder_process(out)
    try:
        t0 = time.perf_counter()
        with pytest.raises(OutDirBusyError) as e:
            with out_dir_lock(out, "midtrain"):
                pass
        msg = str(e.value)
        assert time.perf_counter() - t0 < 1.0
        assert f"out_dir={out}" in msg and f"process {proc.pid}" in msg and "(midtrain" in msg
        assert "\n" not in msg
        assert holder(out)["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # kill -9 left the lock file behind: it is stale, the next run takes it over
    assert lock_path(out).is_file() and holder(out)["pid"] == proc.pid
    with out_dir_lock(out, "midtrain"):
        assert holder(out)["pid"] == os.getpid()
    assert not lock_path(out).exists()  # released and removed on a clean exit
    assert out.is_dir()


def test_reentry_in_one_process_and_release_on_exception(tmp_path):
    out = tmp_path / "run"
    with out_dir_lock(out, "flywheel"):
        with out_dir_lock(out, "midtrain"):
            assert holder(out)["stage"] == "flywheel"
        assert lock_path(out).is_file()
    with pytest.raises(RuntimeError):
        with out_dir_lock(out):
            raise RuntimeError("crash")
    assert not lock_path(out).exists()
    with out_dir_lock(out):  # free again
        pass


def test_decorated_stage_holds_its_folder(tmp_path):
    seen = []

    class Cfg:
        out = str(tmp_path / "sft")

    @locks_out_dir("out", "sft")
    def run(cfg):
        seen.append(holder(cfg.out)["stage"])
        return cfg.out

    assert run(Cfg()) == Cfg.out and seen == ["sft"]
    assert not Path(Cfg.out).exists()  # create=False: atomic_dir stages make the folder by a rename


def test_out_dir_that_is_a_file_or_under_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ConfigError, match=r"^out_dir=.*file\.txt is an existing file, not a folder"):
        ensure_out_dir(f)
    with pytest.raises(ConfigError, match=r"^out_dir=.*file\.txt/sub cannot be created: .*file\.txt is a file"):
        with out_dir_lock(f / "sub"):
            pass
    assert ensure_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()


FORK_WORKER = ("import os, sys, time\nfrom remit.utils.lock import out_dir_lock\n"
               "with out_dir_lock(sys.argv[1], 'prepare-data'):\n"
               "    pid = os.fork()\n"
               "    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n"
               "    print(pid, flush=True)\n    time.sleep(60)\n")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_a_forked_worker_neither_keeps_the_lock_nor_outlives_a_killed_stage(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", FORK_WORKER, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.01)
    try:
        assert not _alive(worker)  # died with the stage
        with out_dir_lock(out, "prepare-data"):  # and did not keep the lock
            assert holder(out)["pid"] == os.getpid()
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_lock_held_by_orphans_of_a_dead_holder_is_taken_over(tmp_path, capsys):
    import fcntl
    import json
    import socket

    out = tmp_path / "run"
    out.mkdir()
    lp = lock_path(out)
    dead = subprocess.Popen(["true"])
    dead.wait()
    # An orphan (here: another fd of this process, which flock treats like another process) holds the lock
    # that names a holder that is dead.
    fd = os.open(lp, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": dead.pid, "host": socket.gethostname(), "stage": "sft", "started": 0}).encode())
    try:
        with out_dir_lock(out, "sft"):
            assert holder(out)["pid"] == os.getpid()
        assert "took over the lock" in capsys.readouterr().err
    finally:
        os.close(fd)
