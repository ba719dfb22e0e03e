"""Summable statistics of an objective, and the one function that turns their totals into logged metrics.

An objective returns, in ``ObjectiveOutput.stats``, SUMS over the counted tokens of its micro-batch, as
float64 tensors keyed ``"<metric>.<part>"``. The trainer adds them over micro-batches and ranks (one
all-reduce, :func:`flatten` / :func:`unflatten`) and :func:`summarize` gives the ``metrics.jsonl`` fields:

    ============================================  =======================================================
    parts of ``<m>``                              logged
    ============================================  =======================================================
    ``m.n``, ``m.sum`` [, ``m.sumsq``]            ``m_mean`` [, ``m_std``] (population std)
    ``m.n``, ``m.hits``                           ``m`` = hits / n (a fraction)
    ``m.n``, ``m.hist``, ``m.lo``, ``m.hi``       ``m`` = the bin counts, ``m_range`` = [lo, hi]
    ``m.total``                                   ``m`` = the sum itself
    ============================================  =======================================================

The builders :func:`moments`, :func:`fraction`, :func:`histogram` and :func:`total` write those parts.
A histogram's range is stored times its count (``lo * n``), so it too survives summation and comes out
exact. With ``n == 0`` a metric is not logged (no NaN). Everything here is a pure function of tensors.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["moments", "fraction", "histogram", "total", "accumulate", "flatten", "unflatten", "summarize"]

Stats = dict[str, Tensor]


def _counted(x: Tensor, mask: Tensor) -> Tensor:
    m = mask if mask.dtype == torch.bool else mask != 0
    return x.detach()[m].double()


def moments(name: str, x: Tensor, mask: Tensor, *, std: bool = True) -> Stats:
    """Count, sum (and sum of squares) of ``x`` over the counted positions: logged as ``name_mean``/``name_std``."""
    v = _counted(x, mask)
    out = {f"{name}.n": torch.tensor(float(v.numel()), dtype=torch.float64, device=v.device), f"{name}.sum": v.sum()}
    if std:
        out[f"{name}.sumsq"] = (v * v).sum()
    return out


def fraction(name: str, hits: Tensor, mask: Tensor) -> Stats:
    """How many counted positions have ``hits`` true, and how many are counted: logged as ``name`` (a share)."""
    m = mask if mask.dtype == torch.bool else mask != 0
    return {f"{name}.n": m.sum(dtype=torch.float64), f"{name}.hits": (hits.bool() & m).sum(dtype=torch.float64)}


def histogram(name: str, x: Tensor, mask: Tensor, *, lo: float, hi: float, bins: int) -> Stats:
    """Counts of ``x`` (clamped into [lo, hi]) in ``bins`` equal bins: logged as ``name`` and ``name_range``."""
    v = _counted(x, mask)
    n = float(v.numel())
    counts = torch.histc(v.clamp(lo, hi), bins=bins, min=lo, max=hi) if n else torch.zeros(bins, dtype=v.dtype,
                                                                                          device=v.device)
    f64 = {"dtype": torch.float64, "device": v.device}
    return {f"{name}.n": torch.tensor(n, **f64), f"{name}.hist": counts.double(),
            f"{name}.lo": torch.tensor(lo * n, **f64), f"{name}.hi": torch.tensor(hi * n, **f64)}


def total(name: str, value: Tensor) -> Stats:
    """A plain sum (e.g. a loss term summed over tokens): logged as ``name``."""
    return {f"{name}.total": value.detach().double().reshape(())}


def accumulate(into: Stats, stats: Stats) -> Stats:
    """``into += stats`` key by key (new keys are copied), on ``into``'s device; returns ``into``."""
    for k, v in stats.items():
        v = v.detach().double()
        if k in into:
            into[k] += v.to(into[k].device)
        else:
            into[k] = v.clone()
    return into


def flatten(stats: Stats) -> tuple[Tensor, list[tuple[str, tuple[int, ...]]]]:
    """One float64 vector of all values (keys sorted, so every rank lays them out alike) and its layout.

    The vector stays on the values' device (they are accumulated on one device), so a GPU run reduces it
    without a copy to the host per key.
    """
    keys = sorted(stats)
    layout = [(k, tuple(stats[k].shape)) for k in keys]
    if not keys:
        return torch.zeros(0, dtype=torch.float64), layout
    return torch.cat([stats[k].double().reshape(-1) for k in keys]), layout


def unflatten(vec: Tensor, layout: list[tuple[str, tuple[int, ...]]]) -> Stats:
    out, i = {}, 0
    for k, shape in layout:
        n = math.prod(shape)
        out[k] = vec[i:i + n].reshape(shape)
        i += n
    return out


def summarize(totals: Stats) -> dict[str, Any]:
    """The logged metrics of summed statistics (see the table in the module docstring)."""
    parts: dict[str, dict[str, Tensor]] = {}
    for key, v in totals.items():
        name, _, part = key.rpartition(".")
        if not name:
            raise ValueError(f"statistic {key!r} must be named '<metric>.<part>'")
        parts.setdefault(name, {})[part] = v
    out: dict[str, Any] = {}
    for name, p in sorted(parts.items()):
        if "total" in p:
            out[name] = float(p["total"])
        n = float(p["n"]) if "n" in p else 0.0
        if n <= 0:
            continue
        if "hist" in p:
            out[name] = [int(round(c)) for c in p["hist"].tolist()]
            out[f"{name}_range"] = [round(float(p["lo"]) / n, 12), round(float(p["hi"]) / n, 12)]
        elif "hits" in p:
            out[name] = float(p["hits"]) / n
        elif "sum" in p:
            mean = float(p["sum"]) / n
            out[f"{name}_mean"] = mean
            if "sumsq" in p:
                out[f"{name}_std"] = math.sqrt(max(float(p["sumsq"]) / n - mean * mean, 0.0))
    return out
