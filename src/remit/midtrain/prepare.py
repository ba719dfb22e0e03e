"""``remit prepare-data``: tokenise and pack the data once, before the training stages run.

    remit prepare-data --config configs/recipes/olmo2-1b-data.yaml data.num_proc=32 out_dir=runs/olmo2-1b/cache
    torchrun --nproc_per_node 8 -m remit.cli midtrain --config configs/recipes/olmo2-1b-remit.yaml \
        data.cache_dir=runs/olmo2-1b/cache

Writes the token shards (``tokens/tok-*``) and the packed index (``packed-*``) into ``data.cache_dir``
(default: ``out_dir``), exactly what ``midtrain`` / ``pretrain`` / ``score-reference`` build for the same
tokenizer and data config, so they find it there and only open it: no rank tokenises, and none waits
at a barrier for hours. The training stages build it themselves when it is absent (rank 0 builds, the
others wait and then read it). A killed run resumes (see ``remit.data.tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from remit.config import ConfigError
from remit.data import build_packed
from remit.manifest import write_manifest
from remit.midtrain.config import DataConfig
from remit.models import load_tokenizer
from remit.utils.lock import locks_out_dir

__all__ = ["PrepareConfig", "run"]


@dataclass
class PrepareConfig:
    tokenizer: str = ""  # dir or hub id: the model's tokenizer (the training stages load the same one)
    data: DataConfig = field(default_factory=DataConfig)
    out_dir: str = "runs/default/cache"  # the manifest; also the cache when data.cache_dir is unset

    def validate(self) -> None:
        if not self.tokenizer:
            raise ConfigError("tokenizer is required: the model's tokenizer (dir or hub id), e.g. tokenizer=MODEL_DIR")


@locks_out_dir("out_dir", "prepare-data", create=True)  # one prepare-data per out_dir at a time
def run(cfg: PrepareConfig) -> Path:
    out = Path(cfg.out_dir)
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else out
    ds = build_packed(list(cfg.data.sources), load_tokenizer(cfg.tokenizer), cfg.data.seq_len, cache_dir=cache,
                      seed=cfg.data.pack_seed, max_tokens=cfg.data.max_tokens, num_proc=cfg.data.num_proc)
    packed = cache / f"packed-{ds.fingerprint}"
    write_manifest(out, "prepare-data", cfg, inputs={"data": [s.path for s in cfg.data.sources]},
                   packed=str(packed), fingerprint=ds.fingerprint, rows=len(ds), tokens=ds.num_tokens,
                   docs=ds.meta.get("num_docs"))
    return packed
