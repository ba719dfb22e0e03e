"""A torchrun worker of test_startup: the start-up of a training stage (shared-storage check, data cache).

    torchrun --standalone --nproc_per_node=2 tests/midtrain/startup_worker.py OUT MODEL DATA [private]

Each rank writes ``OUT/rank<r>.json``: the files it hashed, its dataset's fingerprint and rows, and the
one-line errors it met. ``private``: rank 1 gets its own, empty cache folder (a node-local disk).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from remit.config import load_config
from remit.errors import RemitError
from remit.midtrain.config import MidtrainConfig
from remit.midtrain.distributed import check_shared, init_world
from remit.midtrain.setup import build_dataset, data_cache_dir
from remit.models import load_tokenizer
from remit.utils.io import HASHED


def main(out: Path, model: str, data: str, private: bool) -> int:
    world = init_world("cpu", 120)
    cache = out / ("cache" if world.is_main or not private else f"cache-rank{world.rank}")
    cfg = load_config(MidtrainConfig, None, [f"out_dir={out / 'run'}", f"model.path={model}",
                                             f"data.sources=[{{path: '{data}'}}]", "data.seq_len=32",
                                             f"data.cache_dir={cache}"])
    report: dict = {"errors": []}
    try:
        check_shared({"data.cache_dir": data_cache_dir(cfg, out / "run")}, world)
    except RemitError as e:
        report["errors"].append(str(e))
    try:
        ds = build_dataset(cfg, load_tokenizer(model), world, out / "run")
        report.update(fingerprint=ds.fingerprint, rows=len(ds))
    except RemitError as e:
        report["errors"].append(str(e))
    report["hashed_files"] = HASHED["files"]
    (out / f"rank{world.rank}.json").write_text(json.dumps(report))
    return 2 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:] == ["private"]))
