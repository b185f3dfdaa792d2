"""Intervals for the scorecard's numbers: exact, score and bootstrap, with no dependency.

::

    clopper_pearson(3, 5, 0.95)        # (0.1466, 0.9473): exact binomial interval
    wilson(3, 5, 0.95)                 # (0.2307, 0.8824): Wilson score interval
    pass_at_k_interval(3, 5, 2, 0.95)  # the exact interval of p mapped to 1 - (1 - p)**2
    bounded_mean([0.5, 1.0, 0.0], 0.95)  # mean progress: bootstrap, at least as wide as Wilson
    newcombe(56, 70, 48, 80, 0.95)     # (0.0524, 0.3339): difference of two rates

Every function takes the **confidence** (two-sided, e.g. 0.95) and returns
``(low, high)`` clipped to the quantity's range. Counts may be fractional (the
planner asks "what would ``p * n`` successes in ``n`` epochs give"). With no
sample (``n = 0``) every interval is the whole range: nothing is ruled out.
The formulas are in ``docs/numbers.md``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import lru_cache
from statistics import NormalDist

from pydantic import BaseModel

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "Difference",
    "Estimate",
    "beta_ppf",
    "betainc",
    "bootstrap",
    "bootstrap_max",
    "bounded_mean",
    "clopper_pearson",
    "estimate",
    "mover",
    "mover_mean",
    "newcombe",
    "outward",
    "pass_at_k_interval",
    "rate",
    "wilson",
    "z_value",
]

BOOTSTRAP_RESAMPLES = 2000
"""Resamples per bootstrap interval."""
BOOTSTRAP_SEED = 0
"""The bootstrap's seed: the same episodes always give the same interval."""


class Estimate(BaseModel):
    """A number with its interval: ``value`` in ``[ci_low, ci_high]`` at the scorecard's confidence."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    """Episodes it counts (harness faults excluded)."""
    method: str
    """``clopper-pearson``, ``wilson``, ``bootstrap+wilson``, ``bootstrap``, ..."""

    def excludes(self, bar: float) -> bool:
        """True when the interval lies wholly on one side of ``bar`` (the upper end below it,
        or the lower end at or above it)."""
        return self.ci_high < bar - 1e-9 or self.ci_low >= bar - 1e-9


class Difference(BaseModel):
    """``b - a`` with its interval; ``significant`` when the interval excludes zero."""

    value: float
    ci_low: float
    ci_high: float
    significant: bool
    method: str


def outward(lo: float, hi: float, digits: int = 6) -> tuple[float, float]:
    """``(lo, hi)`` rounded to ``digits`` decimals **outward** (low down, high up).

    Reports show rounded numbers and the gate reads the same numbers, so the
    rounding must never narrow an interval: a threshold exactly at the upper end
    stays "cannot rule out".
    """
    scale = 10**digits
    return math.floor(lo * scale) / scale, math.ceil(hi * scale) / scale


def estimate(value: float, lo: float, hi: float, n: int, method: str) -> Estimate:
    """An :class:`Estimate` with the value rounded and the interval rounded outward."""
    lo, hi = outward(lo, hi)
    return Estimate(value=round(value, 6), ci_low=lo, ci_high=hi, n=n, method=method)


def z_value(confidence: float) -> float:
    """The two-sided normal quantile: 1.959964 for 0.95.

    Raises:
        ValueError: ``confidence`` is not in (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (the Beta(a, b) CDF at ``x``)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
    ln += b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


@lru_cache(maxsize=65536)
def beta_ppf(q: float, a: float, b: float) -> float:
    """The ``q`` quantile of Beta(a, b) (bisection on :func:`betainc`, to 1e-12 relative)."""
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2.0


def clopper_pearson(c: float, n: float, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for a rate from ``c`` successes in ``n`` trials.

    ``low = Beta(alpha/2; c, n-c+1)``, ``high = Beta(1-alpha/2; c+1, n-c)``; 0 and 1 at
    the edges (closed forms ``(alpha/2)**(1/n)`` there).
    """
    alpha = 1.0 - confidence
    if n <= 0:
        return 0.0, 1.0
    c = min(max(c, 0.0), n)
    if c <= 0.0:
        lo = 0.0
    elif c >= n:
        lo = (alpha / 2.0) ** (1.0 / n)
    else:
        lo = beta_ppf(alpha / 2.0, c, n - c + 1.0)
    if c >= n:
        hi = 1.0
    elif c <= 0.0:
        hi = 1.0 - (alpha / 2.0) ** (1.0 / n)
    else:
        hi = beta_ppf(1.0 - alpha / 2.0, c + 1.0, n - c)
    return lo, hi


def wilson(c: float, n: float, confidence: float) -> tuple[float, float]:
    """The Wilson score interval for a rate from ``c`` successes in ``n`` trials.

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = c/n``.
    """
    if n <= 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = min(max(c / n, 0.0), 1.0)
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(max(p * (1.0 - p) / n + z2n / (4.0 * n), 0.0))
    lo = 0.0 if p <= 0.0 else max(0.0, centre - half)
    hi = 1.0 if p >= 1.0 else min(1.0, centre + half)
    return lo, hi


def pass_at_k_interval(c: float, n: float, k: int, confidence: float) -> tuple[float, float]:
    """The interval of ``pass@k = 1 - (1 - p)**k``: the exact interval of ``p`` mapped through it.

    The map is increasing in ``p``, so the coverage of the exact interval carries over.
    """
    lo, hi = clopper_pearson(c, n, confidence)
    return 1.0 - (1.0 - lo) ** k, 1.0 - (1.0 - hi) ** k


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    i = math.floor(pos)
    j = min(i + 1, len(sorted_values) - 1)
    return sorted_values[i] + (sorted_values[j] - sorted_values[i]) * (pos - i)


def bootstrap(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float],
    confidence: float,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic`` over ``values`` (episodes).

    Seeded: the same values give the same interval. ``(0, 1)`` when there are none.
    """
    if not values:
        return 0.0, 1.0
    rng = random.Random(seed)
    n = len(values)
    stats = sorted(statistic(rng.choices(values, k=n)) for _ in range(resamples))
    alpha = 1.0 - confidence
    return _percentile(stats, alpha / 2.0), _percentile(stats, 1.0 - alpha / 2.0)


def bootstrap_max(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """The percentile bootstrap interval of the maximum, from its exact bootstrap distribution.

    A resample's maximum is at most the ``j``-th smallest value with probability
    ``(j / n)**n``, so the percentiles need no resampling: the lower end is the
    smallest order statistic whose probability reaches ``alpha/2``, the upper the
    smallest reaching ``1 - alpha/2`` (in practice the observed maximum: a maximum
    describes what the epochs showed, never more). ``(0, 1)`` when there are none.
    """
    if not values:
        return 0.0, 1.0
    xs = sorted(values)
    n = len(xs)
    alpha = 1.0 - confidence

    def quantile(q: float) -> float:
        for j in range(1, n + 1):
            if (j / n) ** n >= q - 1e-12:
                return xs[j - 1]
        return xs[-1]

    return quantile(alpha / 2.0), quantile(1.0 - alpha / 2.0)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def bounded_mean(
    values: Sequence[float], confidence: float, *, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """The interval of the mean of values in [0, 1] (mean progress, mean depth).

    The percentile bootstrap over episodes, widened where it is narrower to the
    Wilson score interval at the observed mean (``wilson(sum, n)``). The Wilson
    bound uses the largest variance a [0, 1] quantity with that mean can have, so
    a small sample that happens to show no spread (two epochs at 0.5) still gets
    an honest interval; the bootstrap alone would say ``[0.5, 0.5]``.
    """
    if not values:
        return 0.0, 1.0
    b_lo, b_hi = bootstrap(values, _mean, confidence, seed=seed)
    w_lo, w_hi = wilson(sum(values), len(values), confidence)
    return min(b_lo, w_lo), max(b_hi, w_hi)


def rate(c: int, n: int, confidence: float, method: str = "wilson") -> Estimate:
    """``c / n`` as an :class:`Estimate` with a ``wilson`` or ``clopper-pearson`` interval."""
    lo, hi = (
        clopper_pearson(c, n, confidence)
        if method == "clopper-pearson"
        else wilson(c, n, confidence)
    )
    return estimate(c / n if n else 0.0, lo, hi, n, method)


def mover(
    a: tuple[float, float, float], b: tuple[float, float, float]
) -> tuple[float, float, float]:
    """``b - a`` from two independent ``(value, low, high)`` intervals (MOVER, Zou & Donner).

    ``low = d - sqrt((b - b_low)² + (a_high - a)²)``,
    ``high = d + sqrt((b_high - b)² + (a - a_low)²)``, with ``d = b - a``.
    """
    av, al, ah = a
    bv, bl, bh = b
    d = bv - av
    lo = d - math.sqrt((bv - bl) ** 2 + (ah - av) ** 2)
    hi = d + math.sqrt((bh - bv) ** 2 + (av - al) ** 2)
    return d, lo, hi


def newcombe(
    c1: float, n1: float, c2: float, n2: float, confidence: float
) -> tuple[float, float, float]:
    """``p1 - p2`` with Newcombe's hybrid score interval (his method 10: MOVER on Wilson).

    Returns ``(difference, low, high)``.
    """
    p1 = c1 / n1 if n1 else 0.0
    p2 = c2 / n2 if n2 else 0.0
    l1, u1 = wilson(c1, n1, confidence)
    l2, u2 = wilson(c2, n2, confidence)
    return mover((p2, l2, u2), (p1, l1, u1))


def mover_mean(diffs: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The mean of independent ``(difference, low, high)`` intervals (MOVER for a sum).

    ``D = mean(d)``, ``low = D - sqrt(sum((d - low)²)) / T``,
    ``high = D + sqrt(sum((high - d)²)) / T``: used for a category's difference,
    paired by task (each task's difference first, then their mean).

    Raises:
        ValueError: ``diffs`` is empty.
    """
    if not diffs:
        raise ValueError("mover_mean needs at least one difference")
    t = len(diffs)
    d = sum(x[0] for x in diffs) / t
    lo = d - math.sqrt(sum((x[0] - x[1]) ** 2 for x in diffs)) / t
    hi = d + math.sqrt(sum((x[2] - x[0]) ** 2 for x in diffs)) / t
    return d, lo, hi
