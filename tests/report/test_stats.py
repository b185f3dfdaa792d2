"""Every interval against a reference: scipy (a test dependency), exact sums, published values."""

from __future__ import annotations

import math
import random

import pytest
import scipy.special as scipy_special  # a test dependency: the reference computation
import scipy.stats as scipy_stats

from hazmat.report.stats import (
    beta_ppf,
    betainc,
    bootstrap,
    bootstrap_max,
    bounded_mean,
    clopper_pearson,
    mover,
    mover_mean,
    newcombe,
    pass_at_k_interval,
    rate,
    wilson,
    z_value,
)

COUNTS = [(0, 1), (1, 1), (0, 5), (1, 5), (3, 5), (5, 5), (7, 20), (0, 30), (29, 30), (50, 100)]


@pytest.mark.parametrize(("c", "n"), COUNTS)
@pytest.mark.parametrize("conf", [0.8, 0.95, 0.99])
def test_clopper_pearson_matches_scipy(c: int, n: int, conf: float) -> None:
    ref = scipy_stats.binomtest(c, n).proportion_ci(confidence_level=conf, method="exact")
    lo, hi = clopper_pearson(c, n, conf)
    assert lo == pytest.approx(ref.low, abs=1e-9)
    assert hi == pytest.approx(ref.high, abs=1e-9)


@pytest.mark.parametrize(("c", "n"), COUNTS)
@pytest.mark.parametrize("conf", [0.8, 0.95, 0.99])
def test_wilson_matches_scipy(c: int, n: int, conf: float) -> None:
    ref = scipy_stats.binomtest(c, n).proportion_ci(confidence_level=conf, method="wilson")
    lo, hi = wilson(c, n, conf)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_issue_example_three_of_five() -> None:
    # the issue: 3 successes in 5 is compatible with about 0.23 to 0.88 (Wilson 95%)
    lo, hi = wilson(3, 5, 0.95)
    assert (round(lo, 2), round(hi, 2)) == (0.23, 0.88)


@pytest.mark.parametrize("c", [0.0, 0.3, 1.5, 4.99, 12.0])
def test_clopper_pearson_with_fractional_counts_matches_beta_quantiles(c: float) -> None:
    # the planner asks for p * n successes: the beta quantiles take any real count
    n, alpha = 12.0, 0.05
    lo, hi = clopper_pearson(c, n, 1 - alpha)
    want_lo = 0.0 if c == 0 else scipy_stats.beta.ppf(alpha / 2, c, n - c + 1)
    want_hi = 1.0 if c == n else scipy_stats.beta.ppf(1 - alpha / 2, c + 1, n - c)
    assert lo == pytest.approx(want_lo, abs=1e-9)
    assert hi == pytest.approx(want_hi, abs=1e-9)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (1, 1), (2.5, 7), (30, 4), (1e3, 2)])
@pytest.mark.parametrize("x", [1e-6, 0.01, 0.3, 0.5, 0.77, 0.999])
def test_betainc_and_its_inverse(a: float, b: float, x: float) -> None:
    assert betainc(a, b, x) == pytest.approx(scipy_special.betainc(a, b, x), abs=1e-12)
    q = scipy_special.betainc(a, b, x)
    if 1e-12 < q < 1 - 1e-12:
        assert beta_ppf(q, a, b) == pytest.approx(scipy_stats.beta.ppf(q, a, b), rel=1e-8)


def _binom_pmf(n: int, k: int, p: float) -> float:
    return math.comb(n, k) * p**k * (1 - p) ** (n - k)


@pytest.mark.parametrize("n", [1, 5, 12])
def test_clopper_pearson_covers_at_least_its_confidence(n: int) -> None:
    """Exact coverage (a sum over outcomes, no simulation) never below 95% for any p."""
    intervals = [clopper_pearson(c, n, 0.95) for c in range(n + 1)]
    for i in range(1, 200):
        p = i / 200
        cover = sum(_binom_pmf(n, c, p) for c, (lo, hi) in enumerate(intervals) if lo <= p <= hi)
        assert cover >= 0.95 - 1e-9, (n, p, cover)


@pytest.mark.parametrize(("c", "n", "k"), [(0, 5, 2), (1, 5, 3), (3, 5, 5), (5, 5, 2), (4, 20, 10)])
def test_pass_at_k_interval_maps_the_exact_interval(c: int, n: int, k: int) -> None:
    ref = scipy_stats.binomtest(c, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = pass_at_k_interval(c, n, k, 0.95)
    assert lo == pytest.approx(1 - (1 - ref.low) ** k, abs=1e-9)
    assert hi == pytest.approx(1 - (1 - ref.high) ** k, abs=1e-9)


def test_bootstrap_matches_scipy_percentile_and_is_reproducible() -> None:
    rng = random.Random(7)
    values = [rng.choice([0.0, 1 / 3, 2 / 3, 1.0]) for _ in range(40)]
    mine = bootstrap(values, lambda xs: sum(xs) / len(xs), 0.95)
    assert bootstrap(values, lambda xs: sum(xs) / len(xs), 0.95) == mine  # seeded
    ref = scipy_stats.bootstrap(
        (values,),
        lambda x: sum(x) / len(x),
        vectorized=False,
        n_resamples=20_000,
        method="percentile",
        confidence_level=0.95,
        random_state=1,
    ).confidence_interval
    # two Monte Carlo estimates of the same percentiles: agree to sampling noise
    assert mine[0] == pytest.approx(ref.low, abs=0.02)
    assert mine[1] == pytest.approx(ref.high, abs=0.02)


@pytest.mark.parametrize("n", [1, 3, 8, 30])
def test_bootstrap_of_the_maximum_is_its_exact_bootstrap_distribution(n: int) -> None:
    rng = random.Random(n)
    values = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]) for _ in range(n)]
    lo, hi = bootstrap_max(values, 0.95)
    # the exact distribution by enumeration of P(max* <= v) = (#{x <= v} / n) ** n
    xs = sorted(values)
    cdf = [(v, (sum(x <= v for x in xs) / n) ** n) for v in xs]
    assert lo == next(v for v, p in cdf if p >= 0.025 - 1e-12)
    assert hi == next(v for v, p in cdf if p >= 0.975 - 1e-12) == max(values)
    if n > 1:  # and a Monte Carlo bootstrap (scipy) lands on the same upper end
        ref = scipy_stats.bootstrap(
            (values,), max, vectorized=False, n_resamples=4000, method="percentile", random_state=0
        ).confidence_interval
        assert ref.high == pytest.approx(hi)
        assert min(xs) <= ref.low <= hi


def test_bounded_mean_is_never_narrower_than_wilson() -> None:
    # two epochs at 0.5: the bootstrap alone says [0.5, 0.5]; 0.75 is not ruled out by that
    assert bootstrap([0.5, 0.5], lambda xs: sum(xs) / len(xs), 0.95) == (0.5, 0.5)
    lo, hi = bounded_mean([0.5, 0.5], 0.95)
    assert (lo, hi) == pytest.approx(wilson(1.0, 2, 0.95))
    assert hi > 0.75
    # a spread sample: the hull of both
    values = [0.0, 0.0, 1.0, 1.0, 1.0, 0.5]
    b = bootstrap(values, lambda xs: sum(xs) / len(xs), 0.95)
    w = wilson(sum(values), len(values), 0.95)
    assert bounded_mean(values, 0.95) == (min(b[0], w[0]), max(b[1], w[1]))
    assert bounded_mean([], 0.95) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("counts", "want"),
    [
        # Newcombe (1998), "Interval estimation for the difference between independent
        # proportions", Table II, method 10 (hybrid score): published to 4 decimals
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((0, 10, 0, 10), (-0.2775, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
        ((10, 10, 0, 10), (0.6075, 1.0000)),
    ],
)
def test_newcombe_published_values(
    counts: tuple[int, int, int, int], want: tuple[float, float]
) -> None:
    d, lo, hi = newcombe(*counts, 0.95)
    c1, n1, c2, n2 = counts
    assert d == pytest.approx(c1 / n1 - c2 / n2)
    assert (round(lo, 4), round(hi, 4)) == want


def test_newcombe_is_mover_on_scipy_wilson() -> None:
    def w(c: int, n: int) -> tuple[float, float]:
        ci = scipy_stats.binomtest(c, n).proportion_ci(method="wilson")
        return ci.low, ci.high

    (l1, u1), (l2, u2) = w(7, 12), w(2, 9)
    p1, p2 = 7 / 12, 2 / 9
    d, lo, hi = newcombe(7, 12, 2, 9, 0.95)
    assert lo == pytest.approx(d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2))
    assert hi == pytest.approx(d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def test_mover_mean() -> None:
    one = mover((0.2, 0.1, 0.4), (0.5, 0.3, 0.6))
    assert mover_mean([one]) == pytest.approx(one)
    d, lo, hi = mover_mean([(0.1, -0.1, 0.3), (0.3, 0.2, 0.5)])
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.2 - math.sqrt(0.2**2 + 0.1**2) / 2)
    assert hi == pytest.approx(0.2 + math.sqrt(0.2**2 + 0.2**2) / 2)
    with pytest.raises(ValueError):
        mover_mean([])


def test_rate_and_empty_samples() -> None:
    assert rate(0, 0, 0.95).model_dump() == {
        "value": 0.0,
        "ci_low": 0.0,
        "ci_high": 1.0,
        "n": 0,
        "method": "wilson",
    }
    assert clopper_pearson(0, 0, 0.95) == (0.0, 1.0) and wilson(0, 0, 0.95) == (0.0, 1.0)
    assert z_value(0.95) == pytest.approx(1.959963985)
    with pytest.raises(ValueError):
        z_value(1.0)
