"""Per-token log-probabilities without materialising the full [N, V] fp32 log-softmax.

    logps = token_logps(logits, labels)                       # [B, T] fp32, grad flows to logits
    logps = token_logps_from_hidden(hidden, lm_head.weight, labels)   # never builds [N, V] logits

Both are custom ``torch.autograd.Function``s that walk over rows in chunks:

* forward: per chunk, a fused ``log_softmax`` into one reused chunk buffer and a ``gather`` of the
  label's column; only the inputs are saved (by reference, no copy);
* backward: per chunk, the softmax is recomputed (one fused kernel) straight into the gradient
  (logits' dtype), then ``grad = (onehot - softmax) * grad_out`` in place.

So the extra memory is the gradient itself plus one chunk, instead of the log-softmax, the
gather's dense gradient and the log-softmax's gradient of the naive ``log_softmax + gather``
(see ``benchmarks/bench_objectives.py`` for measurements). Labels are already aligned
(``logits[b, t]`` scores ``labels[b, t]``: the caller does the next-token shift); positions with
``labels == ignore_index`` give 0.0 and no gradient. Double backward is not supported.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["token_logps", "token_logps_from_hidden", "DEFAULT_CHUNK_ELEMENTS", "CUDA_CHUNK_ELEMENTS"]

# Rows per chunk are chosen so that one chunk holds about this many elements (64 MiB in fp32; vocab 50k ->
# 335 rows). Small chunks (~1M elements) are as fast single-threaded but much slower with several CPU
# threads on a busy machine (every kernel is a parallel region that waits for its slowest thread);
# measured with benchmarks/bench_objectives.py. Still negligible next to the [N, V] gradient.
DEFAULT_CHUNK_ELEMENTS = 1 << 24
# On a GPU each chunk is a few kernel launches and, for token_logps_from_hidden under autocast, one [V, H]
# temporary per chunk for the weight gradient: larger chunks (128M elements, 512 MiB in fp32; 1337 rows at
# vocab 100k) amortise both. NOT yet measured: benchmarks/gpu_check.py records the rows it ran with.
CUDA_CHUNK_ELEMENTS = 1 << 27


def _rows_per_chunk(chunk_size: int | None, vocab: int, device: torch.device | None = None) -> int:
    if chunk_size is None:
        elements = CUDA_CHUNK_ELEMENTS if device is not None and device.type == "cuda" else DEFAULT_CHUNK_ELEMENTS
        return max(1, elements // max(vocab, 1))
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be a positive number of rows (or None for the default)")
    return int(chunk_size)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for every float dtype except fp64 (kept so that gradcheck can run in double precision)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _flat_labels(labels: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """Labels as [N] int64 with ignored positions replaced by 0, plus the [N] bool mask of kept ones."""
    flat = labels.reshape(-1)
    valid = flat != ignore_index
    return torch.where(valid, flat, torch.zeros_like(flat)).long(), valid


def _check_labels(labels: Tensor, valid: Tensor, safe: Tensor, vocab: int) -> None:
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if safe.numel() and bool(((safe < 0) | (safe >= vocab))[valid].any()):
        raise ValueError(f"labels hold ids outside [0, {vocab}) that are not ignore_index")


_log_softmax_out = torch.ops.aten._log_softmax.out
_softmax_out = torch.ops.aten._softmax.out


class _TokenLogps(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, labels: Tensor, ignore_index: int, rows: int) -> Tensor:
        vocab = logits.shape[-1]
        x = logits.reshape(-1, vocab)
        safe, valid = _flat_labels(labels, ignore_index)
        _check_labels(labels, valid, safe, vocab)
        n, dt = x.shape[0], _compute_dtype(logits.dtype)
        out = torch.empty(n, dtype=dt, device=logits.device)
        # One chunk-sized scratch buffer reused for every chunk: the fused log_softmax kernel writes into
        # it and only the label column is kept (fewer kernel launches than logsumexp + sub + gather).
        scratch = torch.empty(min(rows, n), vocab, dtype=dt, device=logits.device)
        for s in range(0, n, rows):
            xc = x[s:s + rows].to(dt)  # a view when logits are already fp32
            buf = scratch[:xc.shape[0]]
            _log_softmax_out(xc, 1, False, out=buf)
            torch.gather(buf, 1, safe[s:s + rows, None], out=out[s:s + rows, None])
        del scratch
        out.masked_fill_(~valid, 0.0)
        ctx.save_for_backward(logits, safe, valid)
        ctx.rows = rows
        return out.view(labels.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        logits, safe, valid = ctx.saved_tensors
        rows = ctx.rows
        vocab = logits.shape[-1]
        x = logits.reshape(-1, vocab)
        dt = _compute_dtype(logits.dtype)
        g = grad_out.reshape(-1).to(dt).masked_fill(~valid, 0.0)
        grad = torch.empty_like(x, memory_format=torch.contiguous_format)
        in_place = grad.dtype == dt
        scratch = None if in_place else torch.empty(min(rows, x.shape[0]), vocab, dtype=dt, device=x.device)
        for s in range(0, x.shape[0], rows):
            gc, idx = g[s:s + rows, None], safe[s:s + rows, None]
            buf = grad[s:s + rows] if in_place else scratch[:gc.shape[0]]
            # d logp / d logits = (onehot - softmax) * grad_out; the softmax is recomputed in one fused kernel.
            _softmax_out(x[s:s + rows].to(dt), 1, False, out=buf)
            buf.mul_(gc.neg())
            buf.scatter_add_(1, idx, gc)
            if not in_place:
                grad[s:s + rows].copy_(buf)
        return grad.view(logits.shape), None, None, None


def token_logps(logits: Tensor, labels: Tensor, *, ignore_index: int = -100, chunk_size: int | None = None) -> Tensor:
    """Log-probability of ``labels`` under ``softmax(logits)``, fp32 (fp64 for fp64 logits), shape of ``labels``.

    ``logits``: [..., V] (any float dtype), ``labels``: [...] integer ids, already aligned.
    ``chunk_size``: rows per chunk (default: about 16M elements per chunk, 128M on CUDA).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must be labels {tuple(labels.shape)} plus a vocab dim")
    rows = _rows_per_chunk(chunk_size, logits.shape[-1], logits.device)
    return _TokenLogps.apply(logits, labels, ignore_index, rows)


class _TokenLogpsFromHidden(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, bias: Tensor | None, labels: Tensor,
                ignore_index: int, rows: int) -> Tensor:
        h = hidden.reshape(-1, hidden.shape[-1])
        vocab = weight.shape[0]
        safe, valid = _flat_labels(labels, ignore_index)
        _check_labels(labels, valid, safe, vocab)
        n, dt = h.shape[0], _compute_dtype(hidden.dtype)
        out = torch.empty(n, dtype=dt, device=hidden.device)
        for s in range(0, n, rows):
            # The matmul runs in the model's dtype (as an unchunked lm_head would); softmax in fp32.
            zc = torch.nn.functional.linear(h[s:s + rows], weight, bias).to(dt)
            out[s:s + rows] = torch.log_softmax(zc, 1).gather(1, safe[s:s + rows, None]).squeeze(1)
        out.masked_fill_(~valid, 0.0)
        ctx.save_for_backward(hidden, weight, bias, safe, valid)
        ctx.rows = rows
        # Under autocast the forward matmuls ran in the autocast dtype; backward (which runs outside the
        # autocast region) must use it too, or the LM head's three backward matmuls run in fp32 (on a GPU
        # several times slower than bf16; an unchunked lm_head under autocast would be bf16 as well).
        dev = hidden.device.type
        ctx.mm_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
        return out.view(labels.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        hidden, weight, bias, safe, valid = ctx.saved_tensors
        rows = ctx.rows
        h = hidden.reshape(-1, hidden.shape[-1])
        dt = _compute_dtype(hidden.dtype)
        mm = ctx.mm_dtype or weight.dtype  # dtype of the forward's matmul
        w = weight if weight.dtype == mm else weight.to(mm)  # cast once, not per chunk
        b = bias if bias is None or bias.dtype == mm else bias.to(mm)
        g = grad_out.reshape(-1).to(dt).masked_fill(~valid, 0.0)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(h) if need_h else None
        # Accumulate the weight/bias gradients in fp32 over chunks; cast once at the end.
        grad_w = torch.zeros(weight.shape, dtype=dt, device=weight.device) if need_w else None
        grad_b = torch.zeros(weight.shape[0], dtype=dt, device=weight.device) if need_b else None
        for s in range(0, h.shape[0], rows):
            hc, gc = h[s:s + rows], g[s:s + rows, None]
            hm = hc if hc.dtype == mm else hc.to(mm)
            dz = torch.softmax(torch.nn.functional.linear(hm, w, b).to(dt), 1)
            dz.mul_(gc.neg()).scatter_add_(1, safe[s:s + rows, None], gc)
            dzm = dz if dz.dtype == mm else dz.to(mm)
            if need_h:
                if grad_h.dtype == mm:
                    torch.matmul(dzm, w, out=grad_h[s:s + rows])
                else:
                    grad_h[s:s + rows].copy_(dzm @ w)
            if need_w:
                if ctx.mm_dtype is None or mm == dt:
                    grad_w.addmm_(dz.t(), hc.to(dt))
                else:  # autocast: a low-precision product per chunk, summed in fp32
                    grad_w.add_(dzm.t() @ hm)
            if need_b:
                grad_b.add_(dz.sum(0))
        grad_h = grad_h.view(hidden.shape) if need_h else None
        grad_w = grad_w.to(weight.dtype) if need_w else None
        grad_b = grad_b.to(bias.dtype) if need_b else None
        return grad_h, grad_w, grad_b, None, None, None


def token_logps_from_hidden(hidden: Tensor, weight: Tensor, labels: Tensor, *, bias: Tensor | None = None,
                            ignore_index: int = -100, chunk_size: int | None = None) -> Tensor:
    """Like :func:`token_logps` for ``logits = hidden @ weight.T + bias``, built chunk by chunk.

    ``hidden``: [..., H], ``weight``: [V, H] (the LM head), ``bias``: [V] or None. Neither the full
    logits nor their gradient is ever materialised; backward recomputes each chunk's logits.
    ``chunk_size``: rows per chunk (default: about 16M logits per chunk, 128M on CUDA).
    """
    if hidden.shape[:-1] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} must be labels {tuple(labels.shape)} plus a hidden dim")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"weight {tuple(weight.shape)} must be [vocab, {hidden.shape[-1]}]")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias {tuple(bias.shape)} must be [{weight.shape[0]}]")
    rows = _rows_per_chunk(chunk_size, weight.shape[0], weight.device)
    return _TokenLogpsFromHidden.apply(hidden, weight, bias, labels, ignore_index, rows)
