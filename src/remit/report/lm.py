"""Per-token log-probs and full-vocabulary KL between causal LMs, in fp32, memory-bounded.

Shared by ``remit analyze weights`` (:mod:`remit.report.heatmap`), ``remit analyze shift``
(:mod:`remit.report.shift`) and the report. A model is run once over a batch of texts to get
its final hidden states ``h [N, H]`` at the counted positions; the logits ``h @ W.T`` are then
produced in fp32 chunks over rows and over the vocabulary, so neither the ``[N, V]`` fp32
log-softmax nor (for the KL) two such tensors ever exist at once. Memory is bounded by
``row_chunk x vocab_chunk``. Models with logit soft-capping/scaling fall back to full logits.

    enc = encode_texts(tokenizer, ["some text"], max_length=256)
    h = hidden_states(model, enc, batch_size=8)          # ModelStates: hidden [N, H] + head
    lp = target_logps(h, enc.targets)                    # [N] fp32 log p(x_t | x_<t)
    kl = kl_per_token(h_ref, h_model)                    # [N] KL(p_ref || p_model)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from remit.data import DataSource, read_texts
from remit.errors import DataError, IncompatibleModelsError
from remit.models import load_model, load_tokenizer


@dataclass
class Encoded:
    """Texts tokenised into rows; ``positions`` index the scored positions of the flattened batch."""

    rows: list[list[int]]           # token ids per row (BOS first when the tokenizer has one)
    row_of: list[int]               # index of the source text of each row
    offsets: list[list[tuple[int, int] | None]]  # char span in the source text per token (None: added)
    targets: torch.Tensor           # [N] int64: the token predicted at each scored position
    n_scored: list[int]             # scored positions per row (= len(row) - 1)


def encode_texts(tokenizer, texts: list[str], *, max_length: int = 256, windows: bool = False,
                 max_windows: int | None = None) -> Encoded:
    """Tokenise ``texts``; each row starts with BOS (if any) so that its first real token is scored.

    ``windows=True`` splits a long text into consecutive rows of ``max_length`` tokens instead of
    truncating it (the heat-map shows the whole text; the probe set keeps only the head), at most
    ``max_windows`` rows per text (a book of a real corpus is a sample, not the whole book).
    """
    if max_length < 2:
        raise DataError(f"max_length={max_length} must be >= 2 (one context token + one scored token)")
    bos = tokenizer.bos_token_id
    rows, row_of, offsets, targets, n_scored = [], [], [], [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            raise DataError(f"text #{i} is empty or not a string")
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=bool(tokenizer.is_fast))
        ids = list(enc["input_ids"])
        offs = [tuple(o) for o in enc["offset_mapping"]] if tokenizer.is_fast else [None] * len(ids)
        step = max_length - (bos is not None)
        starts = list(range(0, len(ids), step))[:max_windows] if windows else [0]
        for s in starts:
            chunk, chunk_offs = ids[s:s + step], offs[s:s + step]
            if bos is not None:
                chunk, chunk_offs = [bos] + chunk, [None] + chunk_offs
            if len(chunk) < 2:
                continue
            rows.append(chunk)
            row_of.append(i)
            offsets.append(chunk_offs)
            targets.extend(chunk[1:])
            n_scored.append(len(chunk) - 1)
    if not rows:
        raise DataError("no text has at least one token to score")
    return Encoded(rows, row_of, offsets, torch.tensor(targets, dtype=torch.long), n_scored)


@dataclass
class ModelStates:
    """Final hidden states at the scored positions plus the LM head that turns them into logits."""

    hidden: torch.Tensor            # [N, H] (model dtype, on device)
    weight: torch.Tensor            # [V, H] LM head
    bias: torch.Tensor | None
    logits: torch.Tensor | None = None  # [N, V] only for models whose head is not a plain linear map

    @property
    def vocab_size(self) -> int:
        return self.logits.shape[1] if self.logits is not None else self.weight.shape[0]


def _plain_head(model) -> bool:
    cfg = model.config
    return not (getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None)
                or getattr(cfg, "logits_scaling", None))


@torch.no_grad()
def hidden_states(model, enc: Encoded, *, batch_size: int = 8) -> ModelStates:
    """Run ``model`` over ``enc.rows`` (right-padded batches) and keep the scored positions."""
    model.eval()
    device = next(model.parameters()).device
    plain = _plain_head(model)
    body = model.get_decoder() if plain else model
    pad = 0
    kept = []
    for b in range(0, len(enc.rows), batch_size):
        rows = enc.rows[b:b + batch_size]
        L = max(len(r) for r in rows)
        ids = torch.full((len(rows), L), pad, dtype=torch.long)
        att = torch.zeros((len(rows), L), dtype=torch.long)
        for j, r in enumerate(rows):
            ids[j, :len(r)] = torch.tensor(r)
            att[j, :len(r)] = 1
        out = body(input_ids=ids.to(device), attention_mask=att.to(device))
        h = out.last_hidden_state if plain else out.logits
        for j, r in enumerate(rows):
            kept.append(h[j, :len(r) - 1])  # position t predicts token t + 1
    states = torch.cat(kept)
    head = model.get_output_embeddings()
    if plain:
        return ModelStates(states, head.weight, getattr(head, "bias", None))
    return ModelStates(states, head.weight, None, logits=states)


def _logits(s: ModelStates, rows: slice, cols: slice) -> torch.Tensor:
    if s.logits is not None:
        return s.logits[rows, cols].float()
    out = s.hidden[rows].float() @ s.weight[cols].float().T
    if s.bias is not None:
        out = out + s.bias[cols].float()
    return out


def _lse(s: ModelStates, rows: slice, vocab_chunk: int) -> torch.Tensor:
    V = s.vocab_size
    acc = None
    for c in range(0, V, vocab_chunk):
        part = torch.logsumexp(_logits(s, rows, slice(c, min(V, c + vocab_chunk))), dim=-1)
        acc = part if acc is None else torch.logaddexp(acc, part)
    return acc


@torch.no_grad()
def target_logps(s: ModelStates, targets: torch.Tensor, *, row_chunk: int = 1024,
                 vocab_chunk: int = 8192) -> torch.Tensor:
    """fp32 ``log p(target)`` at every scored position, [N] on CPU."""
    N = s.hidden.shape[0]
    targets = targets.to(s.hidden.device)
    out = []
    for r in range(0, N, row_chunk):
        rows = slice(r, min(N, r + row_chunk))
        lse = _lse(s, rows, vocab_chunk)
        if s.logits is not None:
            tgt = s.logits[rows].float().gather(1, targets[rows, None])[:, 0]
        else:
            tgt = (s.hidden[rows].float() * s.weight[targets[rows]].float()).sum(-1)
            if s.bias is not None:
                tgt = tgt + s.bias[targets[rows]].float()
        out.append((tgt - lse).cpu())
    return torch.cat(out)


@torch.no_grad()
def kl_per_token(p: ModelStates, q: ModelStates, *, row_chunk: int = 1024, vocab_chunk: int = 8192) -> torch.Tensor:
    """fp32 ``KL(p || q) = sum_v p_v (log p_v - log q_v)`` per scored position, [N] on CPU.

    Two passes over vocabulary chunks: the log-normalisers first, then the KL sum.
    """
    if p.vocab_size != q.vocab_size:  # padded embedding rows: compare over the shared (real) tokens
        n = min(p.vocab_size, q.vocab_size)
        p, q = restrict_vocab(p, n), restrict_vocab(q, n)
    if p.hidden.shape[0] != q.hidden.shape[0]:
        raise IncompatibleModelsError(f"scored positions differ: {p.hidden.shape[0]} vs {q.hidden.shape[0]} "
                                      "(the models must share the tokenizer)")
    N, V = p.hidden.shape[0], p.vocab_size
    q = _to_device(q, p.hidden.device)
    out = []
    for r in range(0, N, row_chunk):
        rows = slice(r, min(N, r + row_chunk))
        lse_p, lse_q = _lse(p, rows, vocab_chunk), _lse(q, rows, vocab_chunk)
        acc = torch.zeros_like(lse_p)
        for c in range(0, V, vocab_chunk):
            cols = slice(c, min(V, c + vocab_chunk))
            lp = _logits(p, rows, cols) - lse_p[:, None]
            lq = _logits(q, rows, cols) - lse_q[:, None]
            acc += (lp.exp() * (lp - lq)).sum(-1)
        out.append(acc.clamp_min(0.0).cpu())  # KL >= 0; clamp only rounding noise
    return torch.cat(out)


def _to_device(s: ModelStates, device) -> ModelStates:
    if s.hidden.device == device:
        return s
    def mv(t):
        return (None if t is None else t.to(device))
    return ModelStates(mv(s.hidden), mv(s.weight), mv(s.bias), mv(s.logits))


def restrict_vocab(s: ModelStates, n: int) -> ModelStates:
    """The distribution over the first ``n`` tokens only (drops padding rows of the LM head)."""
    if s.vocab_size == n:
        return s
    if s.logits is not None:
        return ModelStates(s.hidden[:, :n], s.weight, None, logits=s.logits[:, :n])
    return ModelStates(s.hidden, s.weight[:n], None if s.bias is None else s.bias[:n])


def detach_states(s: ModelStates) -> ModelStates:
    """Copy the states and head out of the model (so that the model itself can be freed)."""
    def cl(t):
        return (None if t is None else t.detach().clone())
    if s.logits is not None:
        logits = cl(s.logits)
        return ModelStates(logits, s.weight, None, logits=logits)
    return ModelStates(cl(s.hidden), cl(s.weight), cl(s.bias))


def load_pair(path: str | Path, *, device: str | None = None, dtype: str | None = None):
    """(model, tokenizer) through :mod:`remit.models` (local dir or hub id)."""
    model = load_model(str(path), dtype=dtype, device=device)
    return model, load_tokenizer(str(path))


def read_text_file(path: str | Path, *, limit: int | None = None) -> list[str]:
    """A .txt file is one text; anything else goes through :func:`remit.data.read_texts`."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"text file not found: {p}")
    if p.suffix == ".txt":
        return [p.read_text(encoding="utf-8")]

    return read_texts(DataSource(str(p), limit=limit))
