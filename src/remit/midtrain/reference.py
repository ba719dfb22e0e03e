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
from remit.objectives import token_logps, token_logps_from_hidden
from remit.utils.integrations import autocast
from remit.utils.integrity import check_once
from remit.utils.io import file_fingerprint, fingerprint

__all__ = ["PolicyLogps", "OnlineReference", "CachedReference", "score_rows", "model_fingerprint", "cache_fingerprint",
           "CACHE_META", "shard_table", "shards_of", "shard_error", "shard_problem", "write_rows_cache"]

CACHE_META = "meta.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class PolicyLogps(torch.nn.Module):
    """``forward(input_ids, labels, position_ids=None) -> (logps [B, T] fp32, logits [B, T, V] or None)``.

    ``position_ids`` that restart per document (``remit.data.packed_batch``) make the model attend
    within documents only (``data.cross_document_attention=false``).

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

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor | None = None):
        hidden = self.model.get_decoder()(input_ids=input_ids, position_ids=position_ids,
                                          use_cache=False).last_hidden_state
        head = self.model.get_output_embeddings()
        # the head as its own FSDP2 unit (remit.midtrain.distributed.shard_fsdp) gathers its weight around this call
        score = getattr(head, "remit_logps", None)
        if score is not None:
            return score(hidden, labels, self.vocab_limit, self.chunk_size, self.want_logits)
        return head_logps(head, hidden, labels, self.vocab_limit, self.chunk_size, self.want_logits)


def head_logps(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor, vocab_limit: int | None,
               chunk_size: int | None, want_logits: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log-probs of ``labels``, logits or None) from the decoder's last hidden states and the LM head."""
    weight, bias = head.weight, getattr(head, "bias", None)
    if vocab_limit is not None:
        weight = weight[: vocab_limit]
        bias = None if bias is None else bias[: vocab_limit]
    if weight.dtype != hidden.dtype:
        weight = weight.to(hidden.dtype)
        bias = None if bias is None else bias.to(hidden.dtype)
    if want_logits:
        logits = torch.nn.functional.linear(hidden, weight, bias)
        return token_logps(logits, labels, chunk_size=chunk_size), logits
    logps = token_logps_from_hidden(hidden, weight, labels, bias=bias, chunk_size=chunk_size)
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
        # Log-probs of several micro-batches can be computed in one larger forward (score_rows); KD's
        # full logits cannot (they would be held for the whole step).
        self.batchable = not want_logits

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = batch["input_ids"].device
        # Logits for KD are saved by the soft-CE backward, which inference tensors forbid: use no_grad there.
        ctx = torch.no_grad() if self.want_logits else torch.inference_mode()
        with ctx, autocast(device.type, self.autocast_dtype):
            logps, logits = self.net(batch["input_ids"], batch["labels"], batch.get("position_ids"))
        if not self.want_logits:
            logps = logps.clone()  # an ordinary tensor, usable next to the policy's autograd graph
        return logps.float(), logits


def score_rows(frozen, micro_batches: list[dict[str, torch.Tensor]], rows: int, device: torch.device
               ) -> list[tuple[torch.Tensor, None]]:
    """A frozen model's log-probs for every micro-batch of a step, computed ``rows`` rows per forward.

    The rows of all micro-batches are scored in order and split back, so the result is the one of
    scoring each micro-batch on its own (up to float summation order inside the matmuls).
    """
    keys = [k for k in ("input_ids", "labels", "position_ids") if k in micro_batches[0]]
    cat = {k: torch.cat([mb[k] for mb in micro_batches]) for k in keys}
    parts = [frozen({k: v[s:s + rows].to(device, non_blocking=True) for k, v in cat.items()})[0]
             for s in range(0, cat["input_ids"].shape[0], rows)]
    logps = torch.cat(parts) if len(parts) > 1 else parts[0]
    sizes = [mb["input_ids"].shape[0] for mb in micro_batches]
    return [(x, None) for x in torch.split(logps, sizes)]


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
        self.shards = shards_of(self.meta)
        if [s["rows"] for s in self.shards] != [s["rows"] for s in shard_table(self.num_rows, self.shard_rows)]:
            raise DataError(f"{meta_file}: the shards it lists do not cover rows 0-{self.num_rows - 1} in runs of "
                            f"shard_rows={self.shard_rows}; re-run `remit score-reference` into a new out_dir")
        self.files = [s["file"] for s in self.shards]
        for s in self.shards:  # a cut copy fails here, not mid-run
            problem = shard_error(self.path, self.meta, s)
            if problem:
                raise DataError(problem)
        self.crc32 = self.meta.get("crc32") or {}  # recorded when each shard was written; checked at its first read

    def verify(self, k: int) -> None:
        """Refuse shard ``k`` (one line, naming the rebuild) when its content is not what was written."""
        check_once(self.path / "shards" / self.files[k], self.crc32.get(self.files[k]), what="reference-cache shard",
                   rebuild=f"re-run `remit score-reference` with the same config into {self.path} (it re-scores "
                           f"damaged shards)")

    @classmethod
    def is_intact(cls, path: str | Path, verify: bool = False) -> bool:
        """True if ``path`` is a complete cache whose every shard matches its metadata (``verify``: and checksum)."""
        try:
            cache = cls(path)
            for k in range(len(cache.files) if verify else 0):
                cache.verify(k)
        except DataError:
            return False
        return True

    def check(self, expected: dict[str, str], what: str = "reference.cache") -> None:
        """Refuse the cache unless every fingerprint part in ``expected`` matches; name the parts that differ."""
        have = self.meta.get("fingerprint", {})
        diff = [k for k, v in expected.items() if v is not None and have.get(k) != v]
        if diff:
            parts = "; ".join(f"{k}: cache {have.get(k)} vs run {expected[k]}" for k in diff)
            raise ConfigError(f"{what}={self.path} does not match this run: {', '.join(diff)} differ{'s' if len(diff) == 1 else ''} "
                              f"({parts}). Re-run `remit score-reference` for this run's "
                              f"{' and '.join(diff)}"
                              f"{' (its precision= is the run perf.precision)' if 'numerics' in diff else ''}.")

    def _shard(self, k: int) -> np.ndarray:
        arr = self._shards.get(k)
        if arr is None:
            self.verify(k)
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


def shard_table(num_rows: int, shard_rows: int) -> list[dict[str, Any]]:
    """The shards of a cache as ``meta.json`` lists them: ``{"file": "shard-XXXXX.npy", "rows": [lo, hi]}``.

    Shard ``k`` holds rows ``[k * shard_rows, min((k + 1) * shard_rows, num_rows))`` of the packed data.
    """
    return [{"file": f"shard-{k:05d}.npy", "rows": [k * shard_rows, min((k + 1) * shard_rows, num_rows)]}
            for k in range(-(-num_rows // shard_rows))]


def write_rows_cache(path: str | Path, rows: np.ndarray, fingerprint_parts: dict | None = None) -> Path:
    """A complete one-shard cache holding ``rows`` ([num_rows, seq_len] log-probs), in the layout
    ``remit score-reference`` writes and ``CachedReference`` reads; for benchmarks and tests that already
    have the log-probs (a real cache comes from ``remit score-reference``)."""
    path = Path(path)
    shards = shard_table(len(rows), len(rows))
    (path / "shards").mkdir(parents=True, exist_ok=True)
    np.save(path / "shards" / shards[0]["file"], rows)
    meta = {"fingerprint": fingerprint_parts or {}, "num_rows": len(rows), "seq_len": int(rows.shape[1]),
            "shard_rows": len(rows), "dtype": str(rows.dtype), "shards": shards, "complete": True}
    (path / CACHE_META).write_text(json.dumps(meta), encoding="utf-8")
    return path


def shards_of(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The shards a cache's metadata lists (a cache from before the list: the table of its ``shard_rows``)."""
    return meta.get("shards") or shard_table(int(meta["num_rows"]), int(meta["shard_rows"]))


def shard_error(cache: str | Path, meta: dict[str, Any], shard: dict[str, Any]) -> str | None:
    """The one-line error for ``shard`` (an entry of ``shards_of(meta)``) of the cache in ``cache``, or None.

    The shard is checked against the metadata: the rows it lists for it, ``seq_len`` and ``dtype``.
    """
    lo, hi = shard["rows"]
    f = Path(cache) / "shards" / shard["file"]
    problem = shard_problem(f, hi - lo, int(meta["seq_len"]), meta.get("dtype", "float32"))
    if problem is None:
        return None
    return (f"{f}: {problem} (it holds rows {lo}-{hi - 1}); the reference cache {cache} is damaged: re-run "
            f"`remit score-reference` with the same config (it re-scores missing or damaged shards)")


def shard_problem(path: Path, rows: int, seq_len: int, dtype: str) -> str | None:
    """What is wrong with one cache shard (missing, cut short, wrong shape or dtype), or None.

    Checked against the cache's metadata from the ``.npy`` header and the file size, without reading the data.
    """
    if not path.is_file():
        return "the shard is missing"
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, have = read(f)
            start = f.tell()
    except (ValueError, OSError, SyntaxError) as e:
        return f"not a .npy file ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"
    if tuple(shape) != (rows, seq_len) or have != np.dtype(dtype):
        return f"holds {have} {tuple(shape)}, the metadata says {np.dtype(dtype)} ({rows}, {seq_len})"
    expected = start + rows * seq_len * np.dtype(dtype).itemsize
    if size != expected:
        return f"cut short: {size} bytes, {expected} expected from the metadata"
    return None


def model_fingerprint(name_or_path: str | Path) -> str:
    """sha256 of a local model's weight files (a GGUF: of its converted folder's, so either path gives the same);
    a hub id is keyed by its name (no download here)."""
    from remit.models.gguf import resolve_model_path

    p = Path(resolve_model_path(name_or_path)).expanduser()
    if not p.is_dir():
        return fingerprint({"hub": str(name_or_path)})
    files = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise DataError(f"{p}: no weight files ({', '.join(_WEIGHT_SUFFIXES)}) to fingerprint")
    return file_fingerprint(files)


def cache_fingerprint(*, reference: str | None, tokenizer: str, data: str, packing: dict[str, Any],
                      numerics: str | None = None) -> dict[str, Any]:
    """The parts that key a reference cache (each compared separately so that errors can name them).

    ``numerics``: ``perf.numerics_key`` of the forward that scored it (a cache scored under other
    numerics than the training forward would not give delta 0 for identical models).
    """
    return {"reference": reference, "tokenizer": tokenizer, "data": data, "packing": fingerprint(packing),
            "numerics": numerics}
