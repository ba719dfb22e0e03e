"""GGUF paths: which paths count as GGUF checkpoints, and the one-line errors (no download: tiny files written
with the ``gguf`` package). The conversion of a real GGUF is tested in tests/real_model/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remit.errors import RemitError
from remit.models import gguf as G

needs_gguf = pytest.mark.skipif(not G.has_package("gguf"), reason="the optional `gguf` package is not installed")


def _write_gguf(path: Path, arch: str = "llama") -> Path:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float32).reshape(64, 64))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_find_gguf_file_folder_and_plain_dirs(tmp_path, tiny_model_dir):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x")
    assert G.find_gguf(f) == f
    assert G.find_gguf(tmp_path) == f  # a folder holding one .gguf and no config.json
    assert G.find_gguf(tiny_model_dir) is None  # an HF checkpoint stays what it is
    assert G.resolve_model_path(tiny_model_dir) == str(tiny_model_dir)
    assert G.resolve_model_path("org/name") == "org/name"  # hub ids untouched
    (tmp_path / "n.gguf").write_bytes(b"y")
    with pytest.raises(RemitError, match="holds 2 .gguf files"):
        G.find_gguf(tmp_path)
    with pytest.raises(RemitError, match="does not exist"):
        G.find_gguf(tmp_path / "missing.gguf")


def test_missing_gguf_package_is_one_line(tmp_path, monkeypatch):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    monkeypatch.setattr(G, "has_package", lambda name: False)
    monkeypatch.setenv("REMIT_GGUF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RemitError, match=r"m\.gguf: reading GGUF checkpoints needs the `gguf` package: pip install "
                                         r"'remit\[gguf\]'") as e:
        G.resolve_model_path(f)
    assert "\n" not in str(e.value)


@needs_gguf
def test_unsupported_architecture_and_truncated_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REMIT_GGUF_CACHE", str(tmp_path / "cache"))
    bad = _write_gguf(tmp_path / "rwkv.gguf", arch="rwkv99")
    with pytest.raises(RemitError, match="GGUF architecture 'rwkv99' cannot be converted by transformers") as e:
        G.resolve_model_path(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)

    whole = _write_gguf(tmp_path / "llama.gguf")
    assert G._inspect(whole) == "llama"  # the whole file passes the checks
    cut = tmp_path / "cut" / "llama.gguf"
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes()[:-5000])
    with pytest.raises(RemitError, match=r"llama\.gguf: .*truncated.*download or copy it again") as e:
        G.resolve_model_path(cut)
    assert "\n" not in str(e.value)
    head = tmp_path / "head" / "llama.gguf"
    head.parent.mkdir()
    head.write_bytes(whole.read_bytes()[:40])  # cut inside the metadata
    with pytest.raises(RemitError, match="not a readable GGUF file, truncated or corrupt"):
        G.resolve_model_path(head)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing half-converted


@needs_gguf
def test_sha256_and_manifest_inputs(tmp_path, monkeypatch):
    import hashlib

    from remit.manifest import read_manifest, write_manifest

    f = _write_gguf(tmp_path / "llama.gguf")
    assert G.gguf_sha256(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    converted = tmp_path / "conv"
    monkeypatch.setattr(G, "resolve_model_path", lambda p: str(converted))  # no conversion of this tiny file
    write_manifest(tmp_path / "out", "eval", None, inputs={"model": str(f), "data_dir": None, "n": 3})
    m = read_manifest(tmp_path / "out")
    assert m["gguf"] == {"model": {"path": str(f), "sha256": G.gguf_sha256(f), "converted": str(converted)}}
