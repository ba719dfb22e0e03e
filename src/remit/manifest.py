"""``manifest.json``: what a stage produced, from what, with which config.

    write_manifest(out, "midtrain", cfg, inputs={"model": ...}, steps=100)   # last write of a stage
    is_complete(out, cfg)        # True: out holds a finished output of this very config (skip the work)

The manifest is written last (atomically), so its presence marks a finished output; ``config_hash``
lets a stage (or the flywheel) skip work that is already done with the same config.

A config names its inputs by path, so the hash alone would reuse an output whose input stage was made again
in the same folder (a world regenerated with another key, a model re-trained): ``input_stamps`` records, for
every input that is another stage's output (a folder with a manifest, or a file up to two levels inside one),
that manifest's ``config_hash`` and ``finished_at``, and ``is_complete`` is False when an input that is there now
has another stamp. Copying a run folder keeps the stamps; an input that is gone does not invalidate (nothing to
compare); plain user files (a corpus) are not stamped: stages that read them fingerprint their bytes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from remit.config import config_hash, to_dict
from remit.utils.io import atomic_write_json

__all__ = ["MANIFEST", "write_manifest", "read_manifest", "is_complete", "changed_inputs"]

MANIFEST = "manifest.json"


def _paths(value: Any):
    """Every string inside ``value`` (a path, a list or a mapping of them)."""
    if isinstance(value, (str, Path)):
        yield str(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _paths(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _paths(v)


def _stamp(path: str) -> str | None:
    """``config_hash@finished_at`` of the stage output that holds ``path`` (None: not a stage output here)."""
    try:
        p = Path(path)
        if not p.exists():
            return None
        for d in ([p] if p.is_dir() else []) + list(p.parents)[:2]:
            m = read_manifest(d)
            if m is not None and "stage" in m:  # a stage's manifest (a flywheel's own index is rewritten each run)
                return f"{m.get('config_hash')}@{m.get('finished_at')}"
    except (OSError, ValueError):  # a hub id or a name with odd characters: not a local stage output
        return None
    return None


def _stamps(inputs: dict[str, Any] | None) -> dict[str, str]:
    out = {}
    for path in _paths(inputs or {}):
        st = _stamp(path)
        if st is not None:
            out[path] = st
    return out


def changed_inputs(out_dir: str | Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """Inputs of the finished output in ``out_dir`` (its ``manifest`` when already read) that are there now with
    another stamp than when it was made."""
    m = (manifest if manifest is not None else read_manifest(out_dir)) or {}
    return [path for path, st in (m.get("input_stamps") or {}).items() if _stamp(path) not in (None, st)]


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
        "input_stamps": _stamps(inputs),
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
    """True if ``out_dir`` holds a finished stage made with the same config from the same input stages."""
    m = read_manifest(out_dir)
    if m is None or m.get("config_hash") != config_hash(config):
        return False
    changed = changed_inputs(out_dir, m)
    if changed:
        print(f"[remit] {out_dir}: made again, its input {changed[0]} was re-made since"
              + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""), flush=True)
    return not changed
