"""Stage ``prepare``: build a data recipe's jsonl files from raw public datasets (the shared data folder).

    remit prepare --config configs/data/quality.yaml                 # -> runs/data/quality/
    remit prepare --config configs/data/quality.yaml shared_data=/data/public pretrain_chars=3000000

The shared data folder is ``shared_data``, else ``$REMIT_SHARED_DATA``, else ``../shared/data`` (relative to
the working directory, i.e. next to the repository); a missing folder or file stops with one line naming
its path, before any work. Writes ``<name>.jsonl`` per output of the recipe, ``config.yaml`` and
``manifest.json`` (the sha256 of every input file, row/character counts per output and the decontamination
counts). A finished output with the same config and the same input files is reused.

Recipes (one object each in :data:`RECIPES`): ``quality`` (``remit.corpus.quality``: the quality
experiment's pre-/mid-training text, SFT/RL/held-out prompts and held-out gold solutions).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remit.config import check_choice, check_range, config_hash, save_config
from remit.errors import DataError
from remit.manifest import read_manifest, write_manifest
from remit.utils.io import atomic_dir, file_sha256

__all__ = ["RECIPES", "CorpusConfig", "Recipe", "resolve_shared_data", "run"]


@dataclass(frozen=True)
class Recipe:
    name: str
    inputs: tuple[str, ...]  # files read, relative to the shared data folder
    outputs: tuple[str, ...]  # <name>.jsonl written
    build: Callable[..., tuple[dict[str, list[dict]], dict[str, Any]]]  # (folder, pretrain_chars=, seed=)


def _quality() -> Recipe:
    from remit.corpus import quality

    return Recipe("quality", quality.INPUTS, quality.OUTPUTS, quality.build)


RECIPES: dict[str, Callable[[], Recipe]] = {"quality": _quality}


@dataclass
class CorpusConfig:
    recipe: str = "quality"
    out_dir: str = "runs/data/quality"
    shared_data: str = ""          # raw public data; empty: $REMIT_SHARED_DATA, else ../shared/data
    seed: int = 0
    pretrain_chars: int = 6_000_000  # characters of general text for pre-training

    def validate(self) -> None:
        check_choice("recipe", self.recipe, list(RECIPES))
        check_range("pretrain_chars", self.pretrain_chars, 1)


def resolve_shared_data(given: str = "") -> Path:
    """``given``, else ``$REMIT_SHARED_DATA``, else ``../shared/data``; an absent folder raises one line."""
    where = "shared_data" if given else "REMIT_SHARED_DATA" if os.environ.get("REMIT_SHARED_DATA") else None
    path = Path(given or os.environ.get("REMIT_SHARED_DATA") or "../shared/data").resolve()
    if not path.is_dir():
        how = f"(from {where})" if where else "(the default ../shared/data)"
        raise DataError(f"shared data folder not found: {path} {how}; set shared_data=DIR or REMIT_SHARED_DATA "
                        "to the folder holding gsm8k/, math/, mbpp/, ... (its SOURCES.md lists them)")
    return path


def _inputs(shared: Path, recipe: Recipe) -> dict[str, str]:
    missing = [p for p in recipe.inputs if not (shared / p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"recipe '{recipe.name}': input file not found: {shared / missing[0]}{more}")
    return {p: file_sha256(shared / p) for p in recipe.inputs}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def run(cfg: CorpusConfig) -> Path:
    recipe = RECIPES[cfg.recipe]()
    shared = resolve_shared_data(cfg.shared_data)
    inputs = _inputs(shared, recipe)
    out = Path(cfg.out_dir)
    done = read_manifest(out)
    if done and done.get("config_hash") == config_hash(cfg) and done.get("input_sha256") == inputs:
        return out
    t0 = time.perf_counter()
    rows, info = recipe.build(shared, pretrain_chars=cfg.pretrain_chars, seed=cfg.seed)
    with atomic_dir(out) as tmp:
        for name in recipe.outputs:
            _write_jsonl(tmp / f"{name}.jsonl", rows[name])
        save_config(cfg, tmp / "config.yaml")
        write_manifest(tmp, "prepare", cfg, inputs={"shared_data": str(shared)}, input_sha256=inputs,
                       files={name: f"{name}.jsonl" for name in recipe.outputs}, **info,
                       prepare_s=round(time.perf_counter() - t0, 1))
    return out
