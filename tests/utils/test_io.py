"""Atomic writes and manifests: a failed write never replaces a finished output."""

from __future__ import annotations

import json
import shutil

import pytest

from remit.manifest import is_complete, read_manifest, write_manifest
from remit.utils.io import atomic_dir, file_fingerprint


def test_atomic_dir_keeps_old_on_failure(tmp_path):
    out = tmp_path / "ckpt"
    with atomic_dir(out) as d:
        (d / "w.bin").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as d:
            (d / "w.bin").write_text("half")
            raise RuntimeError("crash while saving")
    assert (out / "w.bin").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp left behind
    with atomic_dir(out) as d:
        (d / "w.bin").write_text("v2")
    assert (out / "w.bin").read_text() == "v2"


def test_manifest_and_completion(tmp_path):
    cfg = {"lr": 1.0}
    assert not is_complete(tmp_path, cfg)
    write_manifest(tmp_path, "midtrain", cfg, inputs={"model": "x"}, tokens=5)
    m = read_manifest(tmp_path)
    assert m["stage"] == "midtrain" and m["tokens"] == 5 and m["inputs"] == {"model": "x"}
    assert is_complete(tmp_path, {"lr": 1.0})
    assert not is_complete(tmp_path, {"lr": 2.0})


def test_an_output_is_stale_when_an_input_stage_was_made_again_in_the_same_folder(tmp_path, capsys):
    world, model, out = tmp_path / "world", tmp_path / "model", tmp_path / "midtrain"
    write_manifest(world, "world", {"seed": 1})
    (world / "midtrain.jsonl").write_text("{}\n")
    write_manifest(model, "pretrain", {"lr": 1.0})
    cfg = {"data": str(world / "midtrain.jsonl"), "model": str(model)}
    write_manifest(out, "midtrain", cfg, inputs={"model": str(model), "data": [str(world / "midtrain.jsonl")],
                                                "hub": "org/name", "user_file": str(tmp_path / "corpus.txt")})
    assert set(read_manifest(out)["input_stamps"]) == {str(model), str(world / "midtrain.jsonl")}
    assert is_complete(out, cfg)
    m = read_manifest(world)
    m["finished_at"] = "2099-01-01T00:00:00"  # the world was generated again (same path, another run)
    (world / "manifest.json").write_text(json.dumps(m))
    assert not is_complete(out, cfg)
    assert f"its input {world / 'midtrain.jsonl'} was re-made" in capsys.readouterr().out
    shutil.rmtree(world)  # an input that is gone: nothing to compare, the output stays usable
    assert is_complete(out, cfg)
    write_manifest(out, "midtrain", cfg)  # a manifest without inputs (or an old one without stamps)
    assert is_complete(out, cfg)


def test_file_fingerprint_changes_with_content(tmp_path):
    (tmp_path / "a").write_text("x")
    f1 = file_fingerprint(tmp_path)
    assert f1 == file_fingerprint(tmp_path)
    (tmp_path / "a").write_text("y")
    assert file_fingerprint(tmp_path) != f1


def test_remove_stale_temps_keeps_live_processes_and_finished_checkpoints(tmp_path):
    import subprocess
    import sys

    from remit.utils.io import remove_stale_temps

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f".step-00000003.tmp-{dead.pid}").mkdir()
        (tmp_path / f".step-00000003.tmp-{dead.pid}" / "model.pt").write_bytes(b"x" * 1000)
        (tmp_path / f".step-00000001.old-{dead.pid}").mkdir()
        (tmp_path / f".shard-00002.tmp-{dead.pid}.npy").write_bytes(b"x")
        (tmp_path / f".step-00000004.tmp-{live.pid}").mkdir()
        (tmp_path / "step-00000002").mkdir()
        removed = remove_stale_temps(tmp_path)
        assert sorted(p.name for p in removed) == sorted([f".step-00000003.tmp-{dead.pid}",
                                                          f".step-00000001.old-{dead.pid}",
                                                          f".shard-00002.tmp-{dead.pid}.npy"])
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".step-00000004.tmp-{live.pid}", "step-00000002"]
    finally:
        live.kill()
        live.wait()


def test_atomic_dir_fsyncs_files_and_folder_before_the_rename(tmp_path, monkeypatch):
    import os

    out = tmp_path / "ckpt"
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), out.exists()))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    with atomic_dir(out) as d:
        (d / "sub").mkdir()
        (d / "sub" / "w.bin").write_bytes(b"1234")
        (d / "state.pt").write_bytes(b"5")
    tmp = str(tmp_path / f".ckpt.tmp-{os.getpid()}")
    before = [p for p, existed in synced if not existed]
    assert {tmp + "/sub/w.bin", tmp + "/state.pt", tmp + "/sub", tmp} <= set(before)
    assert synced[-1] == (str(tmp_path), True)  # the parent, after the rename


def test_atomic_dir_keep_existing_lets_the_first_of_two_builders_win(tmp_path):
    """Two processes building one content-addressed folder: the second keeps the first's, no error."""
    out = tmp_path / "packed-abc"
    with atomic_dir(out, keep_existing=True) as tmp:
        (tmp / "mine.txt").write_text("second")
        out.mkdir()  # another process finished first
        (out / "theirs.txt").write_text("first")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["packed-abc"]  # our temp copy is gone
    with atomic_dir(tmp_path / "fresh", keep_existing=True) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (tmp_path / "fresh" / "a.txt").read_text() == "x"


def test_atomic_dir_removes_its_own_dead_temps_and_restores_a_moved_aside_output(tmp_path):
    import subprocess

    from remit.utils.io import atomic_dir

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f".out.tmp-{dead.pid}").mkdir()  # a killed stage's half-written output
    (tmp_path / f".other.tmp-{dead.pid}").mkdir()  # not this folder's: left alone
    (tmp_path / ".out.tmp-1").mkdir()  # a live process (pid 1): left alone
    with atomic_dir(tmp_path / "out") as t:
        (t / "x").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-" + str(dead.pid), ".out.tmp-1", "out"]
    # killed between its two renames: the previous output sits under .old-<pid> and `out` is missing
    (tmp_path / "out").rename(tmp_path / f".out.old-{dead.pid}")
    with atomic_dir(tmp_path / "out2"):
        pass
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out"):
            raise RuntimeError("fails after the cleanup")
    assert (tmp_path / "out" / "x").read_text() == "new"


def test_file_fingerprint_memo(tmp_path):
    """Hashed once per (path, size, mtime): the same digest as before, read again only when a file changes."""
    import hashlib
    import os

    from remit.utils import io

    data = tmp_path / "d"
    data.mkdir()
    (data / "a.txt").write_bytes(b"alpha")
    (data / "b.txt").write_bytes(b"beta")
    want = hashlib.sha256(b"a.txt" + b"alpha" + b"b.txt" + b"beta").hexdigest()[:16]  # the unmemoised recipe
    memo = tmp_path / "cache" / "file-hashes.json"
    io._MEMO.clear()
    before = io.HASHED["files"]
    assert file_fingerprint(data, memo=memo) == want
    assert io.HASHED["files"] == before + 2
    io._MEMO.clear()  # a new process: the memo file answers, no byte is read
    assert file_fingerprint(data, memo=memo) == want
    assert io.HASHED["files"] == before + 2
    (data / "b.txt").write_bytes(b"BETA")
    os.utime(data / "b.txt", ns=(1, 1))  # another mtime (and content): hashed again
    assert file_fingerprint(data, memo=memo) != want
    assert io.HASHED["files"] == before + 4
