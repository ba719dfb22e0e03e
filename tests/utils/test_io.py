"""Atomic writes and manifests: a failed write never replaces a finished output."""

from __future__ import annotations

import pytest

from remit.utils.io import atomic_dir, file_fingerprint, is_complete, read_manifest, write_manifest


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


def test_file_fingerprint_changes_with_content(tmp_path):
    (tmp_path / "a").write_text("x")
    f1 = file_fingerprint(tmp_path)
    assert f1 == file_fingerprint(tmp_path)
    (tmp_path / "a").write_text("y")
    assert file_fingerprint(tmp_path) != f1
