"""Shared session-scoped fixtures: tiny texts, a tiny tokenizer and a tiny Llama saved on disk.

Everything is built in code (no downloads) under pytest's tmp dir, in a few seconds.
Area-specific fixtures live in tests/<area>/conftest.py.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_VOCAB = 512
TINY_HIDDEN = 32


def shared_data_dir() -> Path:
    """/work/shared/data next to the repo (or $REMIT_SHARED_DATA); tests skip when absent."""
    return Path(os.environ.get("REMIT_SHARED_DATA", REPO_ROOT / ".." / "shared" / "data")).resolve()


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if int((p / "stat").read_text().rsplit(") ", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session")
def procs():
    """/proc readers for the tests that kill runs (Linux): ``procs.children(pid)`` (its child pids) and
    ``procs.alive(pid)`` (exists and is not a zombie)."""
    from types import SimpleNamespace

    return SimpleNamespace(children=_children, alive=_alive)


def make_tiny_texts(n: int = 400, seed: int = 0) -> list[str]:
    """Short deterministic English and arithmetic lines."""
    rng = random.Random(seed)
    names = ["Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gus", "Hana"]
    things = ["apples", "books", "coins", "cards", "pens", "shells", "stones", "cups"]
    verbs = ["has", "finds", "buys", "gives away", "keeps", "counts"]
    places = ["in the park", "at school", "at home", "by the river", "in the shop"]
    lines = []
    for i in range(n):
        kind = i % 4
        a, b = rng.randint(1, 60), rng.randint(1, 40)
        if kind == 0:
            lines.append(f"{rng.choice(names)} {rng.choice(verbs)} {a} {rng.choice(things)} {rng.choice(places)}.")
        elif kind == 1:
            op = rng.choice(["+", "-", "*"])
            val = a + b if op == "+" else a - b if op == "-" else a * b
            lines.append(f"{a} {op} {b} = {val}")
        elif kind == 2:
            n1, n2, t = rng.choice(names), rng.choice(names), rng.choice(things)
            lines.append(f"{n1} has {a} {t}. {n2} gives {n1} {b} more. So {n1} has {a} + {b} = {a + b} {t}.")
        else:
            lines.append(f"The {rng.choice(['cat', 'dog', 'bird', 'fox'])} sleeps {rng.choice(places)} "
                         f"and the sun is {rng.choice(['warm', 'bright', 'low', 'red'])} today.")
    return lines


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session")
def tiny_texts() -> list[str]:
    return make_tiny_texts()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, tiny_texts) -> Path:
    from remit.models import train_tokenizer

    out = tmp_path_factory.mktemp("tiny_tokenizer")
    train_tokenizer(tiny_texts, TINY_VOCAB, out_dir=out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from remit.models import load_tokenizer

    return load_tokenizer(tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random-init Llama (hidden 32, 2 layers, seed 0) saved with the tokenizer, as an HF checkpoint."""
    from remit.models import ModelConfig

    out = tmp_path_factory.mktemp("tiny_model")
    model = ModelConfig(arch="llama", hidden_size=TINY_HIDDEN, num_layers=2, num_heads=4).build(tiny_tokenizer, seed=0)
    model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_jsonl(tmp_path_factory, tiny_texts) -> Path:
    """A jsonl of {"text": ...}: 100 documents of 1-3 lines each."""
    out = tmp_path_factory.mktemp("tiny_data") / "tiny.jsonl"
    rng = random.Random(1)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(100):
            k = rng.randint(1, 3)
            f.write(json.dumps({"text": " ".join(tiny_texts[(3 * i + j) % len(tiny_texts)] for j in range(k))}) + "\n")
    return out
