"""remit's one statistics module: every interval, p-value and test decision comes from here.

Sign convention, everywhere: a difference is **treatment - baseline** (positive = the treatment scored
higher); for lower-is-better metrics the caller flips the sign to get a "gain".

Units. The unit of an experiment is the training run (seed), not the example:
- within ONE run, :func:`paired_bootstrap` resamples examples (same examples, same order on both sides).
  It says how precisely this run was measured, not whether another seed would agree;
- across seeds, the headline is :func:`seed_t` — the paired t interval on the per-seed differences
  (n - 1 degrees of freedom); :func:`crossed_bootstrap` (seeds and examples resampled independently) is a
  secondary description. A percentile bootstrap over 5 seeds covers only ~89-92% at a nominal 95%
  (tests/eval/test_stats.py simulates it); the t interval covers 95% when seed effects are roughly normal.
- families of tests: :func:`fixed_sequence` for pre-registered ordered hypotheses, :func:`holm` for an
  unordered family, :func:`tost` for equivalence, :func:`noninferiority` for "not worse by more than a
  margin", :func:`in_window` for a two-stage design's trigger, :func:`mde` for what the seeds at hand can
  detect.

    remit stats benchmarks/results/flywheel/summary.json      # seed-level table of every `per_seed` list
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class Estimate:
    """A difference with its interval. ``p`` is for ``alternative`` (two-sided unless asked otherwise)."""

    mean: float
    lo: float
    hi: float
    p: float | None
    n: int
    method: str            # "bootstrap (examples)", "t (seeds)", "crossed bootstrap (seeds x examples)", ...
    confidence: float = 0.95
    alternative: str = "two-sided"
    sd: float | None = None  # standard deviation of the unit-level differences (seeds, for seed_t)

    @property
    def significant(self) -> bool:
        """The interval excludes 0 (for a one-sided alternative: the one-sided bound does)."""
        if math.isnan(self.lo) or math.isnan(self.hi):
            return False
        if self.alternative == "greater":
            return self.lo > 0
        if self.alternative == "less":
            return self.hi < 0
        return self.lo > 0 or self.hi < 0

    def as_dict(self) -> dict:
        return asdict(self)


def _check_alt(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def bootstrap_draws(d: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of the 1-D array ``d``; the index matrix is drawn in
    chunks of at most ~4M entries (bounded memory), which for the usual sizes is one draw of
    ``rng.integers(0, n, (n_boot, n))``."""
    n = len(d)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 4_000_000 // max(n, 1))
    for s in range(0, n_boot, step):
        k = min(step, n_boot - s)
        means[s:s + k] = d[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return means


def paired_bootstrap(baseline, treatment, *, n_boot: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[Estimate, np.ndarray]:
    """Within one run: mean(treatment - baseline) over the first min(len) examples, paired by index, with a
    percentile interval and a two-sided bootstrap p-value; also returns the draws (for averaging over tasks)."""
    n = min(len(baseline), len(treatment))
    if n == 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, None, 0, "bootstrap (examples)", confidence), np.empty(0)
    d = np.asarray(treatment[:n], dtype=np.float64) - np.asarray(baseline[:n], dtype=np.float64)
    draws = bootstrap_draws(d, n_boot=n_boot, seed=seed)
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    p = min(1.0, 2 * min(float((draws <= 0).mean()), float((draws >= 0).mean())))
    return Estimate(float(d.mean()), float(lo), float(hi), p, n, "bootstrap (examples)", confidence), draws


def _t():
    from scipy import stats as st  # scipy is a declared dependency; imported here to keep `--help` light

    return st.t


def seed_t(per_seed, *, confidence: float = 0.95, alternative: str = "two-sided") -> Estimate:
    """The headline across seeds: the paired t interval on one difference per seed (n - 1 df).

    For a one-sided alternative the interval is one-sided too (``greater``: [lo, +inf)), matching its p."""
    _check_alt(alternative)
    d = np.asarray(per_seed, dtype=np.float64)
    n = len(d)
    nan = float("nan")
    if n < 2:
        return Estimate(float(d.mean()) if n else nan, nan, nan, None, n, "t (seeds)", confidence, alternative)
    m, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    t = _t()
    df = n - 1
    if sd <= 1e-12 * max(1.0, abs(m)):
        # Every seed gave the same difference: t is +-inf (or undefined at 0). The limit of the test, in the
        # direction asked: p = 0 only when the common difference lies on the alternative's side.
        on_side = {"two-sided": m != 0, "greater": m > 0, "less": m < 0}[alternative]
        lo, hi = {"two-sided": (m, m), "greater": (m, math.inf), "less": (-math.inf, m)}[alternative]
        return Estimate(m, lo, hi, 0.0 if on_side else 1.0, n, "t (seeds; no spread)", confidence, alternative, 0.0)
    stat = m / se
    if alternative == "two-sided":
        q = t.ppf(0.5 + confidence / 2, df)
        lo, hi, p = m - q * se, m + q * se, float(2 * t.sf(abs(stat), df))
    elif alternative == "greater":
        q = t.ppf(confidence, df)
        lo, hi, p = m - q * se, math.inf, float(t.sf(stat, df))
    else:
        q = t.ppf(confidence, df)
        lo, hi, p = -math.inf, m + q * se, float(t.cdf(stat, df))
    return Estimate(m, float(lo), float(hi), p, n, "t (seeds)", confidence, alternative, sd)


def crossed_bootstrap(diffs, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Secondary across-seed interval: ``diffs`` is (seeds x examples) of treatment - baseline, the same
    examples for every seed; seeds and examples are resampled independently (a two-way bootstrap)."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 1:
        raise ValueError(f"crossed_bootstrap needs a (seeds >= 2) x (examples >= 1) matrix, got shape {d.shape}")
    s, n = d.shape
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, s, size=s)
        cols = rng.integers(0, n, size=n)
        draws[b] = d[np.ix_(rows, cols)].mean()
    tail = (1.0 - confidence) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    p = min(1.0, 2 * min(float((draws <= 0).mean()), float((draws >= 0).mean())))
    return Estimate(float(d.mean()), float(lo), float(hi), p, s, "crossed bootstrap (seeds x examples)", confidence)


def tost(per_seed, margin: float, *, alpha: float = 0.05) -> dict:
    """Two one-sided t tests for equivalence within +-margin: equivalent when both p < alpha, i.e. when the
    (1 - 2 alpha) t interval lies inside (-margin, +margin)."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    d = np.asarray(per_seed, dtype=np.float64)
    lower = seed_t(d + margin, alternative="greater")   # H0: mean <= -margin
    upper = seed_t(d - margin, alternative="less")      # H0: mean >= +margin
    ci = seed_t(d, confidence=1 - 2 * alpha)
    p = max(lower.p if lower.p is not None else 1.0, upper.p if upper.p is not None else 1.0)
    return {"p": p, "equivalent": p < alpha, "margin": margin, "ci": [ci.lo, ci.hi],
            "confidence": 1 - 2 * alpha}


def noninferiority(per_seed, margin: float) -> float | None:
    """One-sided p of H0: mean gain <= -margin (the paired t test of ``per_seed + margin`` > 0); None with
    fewer than 2 seeds. Rejected (p < alpha) means: not worse than the baseline by ``margin`` or more."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    return seed_t(np.asarray(per_seed, dtype=np.float64) + margin, alternative="greater").p


def in_window(p: float | None, window) -> bool:
    """A two-stage design's trigger: the stage-1 p lies in the closed interval ``window`` = [lo, hi]."""
    return p is not None and window[0] <= p <= window[1]


def fixed_sequence(pvalues, *, alpha: float = 0.05) -> list[dict]:
    """Pre-registered ordered hypotheses: test each at the full alpha, in order, and stop at the first that
    is not rejected (later ones are not tested). ``pvalues`` may hold None for a hypothesis not run."""
    out, go_on = [], True
    for p in pvalues:
        tested = go_on and p is not None
        rejected = bool(tested and p < alpha)
        out.append({"p": p, "tested": tested, "rejected": rejected})
        go_on = go_on and rejected
    return out


def holm(pvalues, *, alpha: float = 0.05) -> list[dict]:
    """Holm's step-down correction for an unordered family: adjusted p-values and rejections, input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return [{"p": float(p[i]), "p_holm": float(adj[i]), "rejected": bool(adj[i] < alpha)} for i in range(m)]


def mde(n: int, sd: float, *, alpha: float = 0.05, power: float = 0.8, alternative: str = "two-sided") -> float:
    """The smallest true mean difference a paired t test on ``n`` seeds detects with ``power``, given the
    between-seed standard deviation ``sd`` of the differences (noncentral-t, exact)."""
    _check_alt(alternative)
    if n < 2 or sd <= 0:
        return float("nan")
    from scipy import optimize
    from scipy import stats as st

    df = n - 1
    se = sd / math.sqrt(n)
    crit = st.t.ppf(1 - alpha / 2 if alternative == "two-sided" else 1 - alpha, df)

    def achieved(delta: float) -> float:
        nc = delta / se
        pw = st.nct.sf(crit, df, nc)
        if alternative == "two-sided":
            pw += st.nct.cdf(-crit, df, nc)
        return (1.0 if math.isnan(pw) else pw) - power  # NaN only far in the tail, where power is ~1

    hi = sd
    while achieved(hi) < 0 and hi < 1e6 * sd:
        hi *= 2
    return float(optimize.brentq(achieved, 1e-12 * sd, hi))


def min_sign_test_p(n: int) -> float:
    """The smallest two-sided p a sign (or exact Wilcoxon signed-rank) test can reach with n seeds: 2 / 2^n."""
    return min(1.0, 2.0 / 2 ** n)
