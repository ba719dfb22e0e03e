"""``manifest.json``: what a stage produced, from what, with which config.

    write_manifest(out, "midtrain", cfg, inputs={"model": ...}, steps=100)   # last write of a stage
    is_complete(out, cfg)        # True: out holds a finished output of this very config (skip the work)

The manifest is written last (atomically), so its presence marks a finished output; ``config_hash``
lets a stage (or the flywheel) skip work that is already done with the same config.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from remit.config import config_hash, to_dict
from remit.utils.io import atomic_write_json

__all__ = ["MANIFEST", "write_manifest", "read_manifest", "is_complete"]

MANIFEST = "manifest.json"


def write_manifest(out_dir: str | Path, stage: str, config: Any = None, inputs: dict[str, Any] | None = None,
                   **extra: Any) -> Path:
    """Write ``manifest.json`` describing a finished stage output (a GGUF input also gets its sha256)."""
    from remit.models.gguf import gguf_inputs

    out_dir = Path(out_dir)
    ggufs = gguf_inputs(inputs or {})
    data = {
        "stage": stage,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config_hash": config_hash(config) if config is not None else None,
        "config": to_dict(config) if config is not None else None,
        "inputs": inputs or {},
        **({"gguf": ggufs} if ggufs else {}),
        **extra,
    }
    return atomic_write_json(out_dir / MANIFEST, data)


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    p = Path(out_dir) / MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def is_complete(out_dir: str | Path, config: Any) -> bool:
    """True if ``out_dir`` holds a finished stage made with the same config."""
    m = read_manifest(out_dir)
    return m is not None and m.get("config_hash") == config_hash(config)
