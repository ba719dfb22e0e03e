"""Stage ``world``: write the embedded default world's data to disk.

    remit world                       # -> runs/world
    remit world out_dir=runs/w seed=1 difficulty=2 kinds=arith,logic

Writes ``pretrain.jsonl`` and ``midtrain.jsonl`` (``{"text"}``), ``sft.jsonl``
(``{"prompt", "response", "kind", "answer"}``), ``rl.jsonl`` and ``eval.jsonl``
(``{"prompt", "answer", "kind"}``), ``config.yaml`` and ``manifest.json`` (with row and
character counts per split). A finished output with the same config is reused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from remit.config import save_config
from remit.manifest import is_complete, write_manifest
from remit.utils.io import atomic_dir
from remit.world.config import WorldConfig
from remit.world.generate import generate_world

__all__ = ["FILES", "WorldConfig", "run"]  # WorldConfig lives in config.py; re-exported for callers


FILES = {"pretrain": "pretrain.jsonl", "midtrain": "midtrain.jsonl", "sft": "sft.jsonl", "rl": "rl.jsonl",
         "eval": "eval.jsonl"}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _chars(rows: list[dict]) -> int:
    return sum(len(r.get("text", "")) + len(r.get("prompt", "")) + len(r.get("response", "")) for r in rows)


def run(cfg: WorldConfig) -> Path:
    out = Path(cfg.out_dir)
    if is_complete(out, cfg):
        return out
    t0 = time.perf_counter()
    world = generate_world(cfg)
    stats = {name: {"rows": len(rows), "chars": _chars(rows)} for name, rows in world.items()}
    with atomic_dir(out) as tmp:
        for name, rows in world.items():
            _write_jsonl(tmp / FILES[name], rows)
        save_config(cfg, tmp / "config.yaml")
        write_manifest(tmp, "world", cfg, files=FILES, splits=stats,
                       generate_s=round(time.perf_counter() - t0, 3))
    return out
