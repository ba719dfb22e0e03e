"""Per-token log-probs of the policy (with grad) and of a frozen reference (online or cached).

* :class:`PolicyLogps` wraps a causal LM so that ONE module forward (what DDP / FSDP2 wrap) returns
  fp32 per-token log-probs computed chunk by chunk from the last hidden state and the LM head weight
  (``token_logps_from_hidden``): the [N, V] logits are never materialised, except for KD, which needs
  full distributions and asks for the logits.
* :class:`OnlineReference`: the frozen reference runs the same micro-batch in inference mode.
* :class:`CachedReference`: reads ``remit score-reference`` shards by ``row_index`` (memory-mapped
  ``.npy``), after checking the cache's fingerprint (reference weights, tokenizer, data, packing)
  against the run's and naming the part that differs, and that every shard is there with its rows
  (a missing or truncated shard is an error naming it).

Log-probs are aligned with the labels: position t scores ``labels[:, t]`` (the next token).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from remit.errors import ConfigError, DataError
from remit.utils.io import file_fingerprint, fingerprint

__all__ = ["PolicyLogps", "OnlineReference", "CachedReference", "model_fingerprint", "cache_fingerprint", "CACHE_META"]

CACHE_META = "meta.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class PolicyLogps(torch.nn.Module):
    """``forward(input_ids, labels) -> (logps [B, T] fp32, logits [B, T, V] or None)``.

    ``vocab_limit``: score over the first ``vocab_limit`` rows of the LM head only (models whose
    embeddings differ from the tokenizer by padding rows; see ``remit.models.check_compatible``).
    """

    def __init__(self, model: torch.nn.Module, *, vocab_limit: int | None = None, chunk_size: int | None = None,
                 want_logits: bool = False):
        super().__init__()
        self.model = model
        self.vocab_limit = vocab_limit
        self.chunk_size = chunk_size
        self.want_logits = want_logits

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor):
        from remit.objectives import token_logps, token_logps_from_hidden

        hidden = self.model.get_decoder()(input_ids=input_ids, use_cache=False).last_hidden_state
        head = self.model.get_output_embeddings()
        weight, bias = head.weight, getattr(head, "bias", None)
        if self.vocab_limit is not None:
            weight = weight[: self.vocab_limit]
            bias = None if bias is None else bias[: self.vocab_limit]
        if weight.dtype != hidden.dtype:
            weight = weight.to(hidden.dtype)
            bias = None if bias is None else bias.to(hidden.dtype)
        if self.want_logits:
            logits = torch.nn.functional.linear(hidden, weight, bias)
            return token_logps(logits, labels, chunk_size=self.chunk_size), logits
        logps = token_logps_from_hidden(hidden, weight, labels, bias=bias, chunk_size=self.chunk_size)
        # A fresh [B, T] tensor, not a view: FSDP2 hooks the module's outputs for its pre-backward all-gather.
        return logps.clone(), None


class OnlineReference:
    """A frozen model scored on the fly (inference mode; outputs are ordinary tensors, no grad)."""

    def __init__(self, model: torch.nn.Module, *, vocab_limit: int | None = None, chunk_size: int | None = None,
                 want_logits: bool = False, autocast_dtype: torch.dtype | None = None):
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.net = PolicyLogps(model, vocab_limit=vocab_limit, chunk_size=chunk_size, want_logits=want_logits)
        self.want_logits = want_logits
        self.autocast_dtype = autocast_dtype

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = batch["input_ids"].device
        # Logits for KD are saved by the soft-CE backward, which inference tensors forbid: use no_grad there.
        ctx = torch.no_grad() if self.want_logits else torch.inference_mode()
        with ctx, _autocast(device, self.autocast_dtype):
            logps, logits = self.net(batch["input_ids"], batch["labels"])
        if not self.want_logits:
            logps = logps.clone()  # an ordinary tensor, usable next to the policy's autograd graph
        return logps.float(), logits


def _autocast(device: torch.device, dtype: torch.dtype | None):
    import contextlib

    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


class CachedReference:
    """Reads a ``remit score-reference`` output: ``meta.json`` + ``shards/shard-XXXXX.npy`` ([rows, seq_len])."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_file = self.path / CACHE_META
        if not meta_file.is_file():
            raise DataError(f"{self.path}: not a reference cache (no {CACHE_META}); run `remit score-reference` first")
        self.meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if not self.meta.get("complete", False):
            raise DataError(f"{self.path}: the reference cache is incomplete (re-run `remit score-reference` "
                            f"with the same config to finish it)")
        self.shard_rows = int(self.meta["shard_rows"])
        self.num_rows = int(self.meta["num_rows"])
        self._shards: dict[int, np.ndarray] = {}
        self.files = [s["file"] for s in self.meta["shards"]] if "shards" in self.meta else [
            f"shard-{k:05d}.npy" for k in range(-(-self.num_rows // self.shard_rows))]
        for k, name in enumerate(self.files):
            lo, hi = shard_range(k, self.shard_rows, self.num_rows)
            problem = shard_problem(self.path / "shards" / name, hi - lo, int(self.meta["seq_len"]))
            if problem:
                raise DataError(f"{self.path / 'shards' / name}: {problem} (it holds rows {lo}-{hi - 1}); re-run "
                                f"`remit score-reference` with the same config to recompute it")

    def check(self, expected: dict[str, str], what: str = "reference.cache") -> None:
        """Refuse the cache unless every fingerprint part in ``expected`` matches; name the parts that differ."""
        have = self.meta.get("fingerprint", {})
        diff = [k for k, v in expected.items() if v is not None and have.get(k) != v]
        if diff:
            parts = "; ".join(f"{k}: cache {have.get(k)} vs run {expected[k]}" for k in diff)
            raise ConfigError(f"{what}={self.path} does not match this run: {', '.join(diff)} differ{'s' if len(diff) == 1 else ''} "
                              f"({parts}). Re-run `remit score-reference` for this run's "
                              f"{' and '.join(diff)}.")

    def _shard(self, k: int) -> np.ndarray:
        arr = self._shards.get(k)
        if arr is None:
            arr = np.load(self.path / "shards" / self.files[k], mmap_mode="r")
            self._shards[k] = arr
        return arr

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, None]:
        rows = batch["row_index"].tolist()
        T = batch["labels"].shape[1]
        out = np.empty((len(rows), T), dtype=np.float32)
        for i, r in enumerate(rows):
            if not 0 <= r < self.num_rows:
                raise DataError(f"{self.path}: row {r} is outside the cache ({self.num_rows} rows)")
            out[i] = self._shard(r // self.shard_rows)[r % self.shard_rows, :T]
        return torch.from_numpy(out).to(batch["labels"].device), None


def shard_range(k: int, shard_rows: int, num_rows: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of the packed dataset that shard ``k`` holds."""
    return k * shard_rows, min((k + 1) * shard_rows, num_rows)


def shard_problem(path: Path, rows: int, seq_len: int) -> str | None:
    """Why a cache shard is unusable (missing, truncated, wrong shape), or None when it is fine."""
    if not path.is_file():
        return "missing"
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        return f"truncated or not a .npy file ({e})"
    if arr.shape != (rows, seq_len):
        return f"shape {arr.shape}, expected ({rows}, {seq_len})"
    return None


def model_fingerprint(name_or_path: str | Path) -> str:
    """sha256 of a local model's weight files; a hub id is keyed by its name (no download here)."""
    p = Path(str(name_or_path)).expanduser()
    if not p.is_dir():
        return fingerprint({"hub": str(name_or_path)})
    files = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise DataError(f"{p}: no weight files ({', '.join(_WEIGHT_SUFFIXES)}) to fingerprint")
    return file_fingerprint(files)


def cache_fingerprint(*, reference: str | None, tokenizer: str, data: str, packing: dict[str, Any]) -> dict[str, Any]:
    """The parts that key a reference cache (each compared separately so that errors can name them)."""
    return {"reference": reference, "tokenizer": tokenizer, "data": data, "packing": fingerprint(packing)}
