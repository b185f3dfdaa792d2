"""The planner: epochs at a rate against a brute-force reference (scipy), and its table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import scipy.stats as scipy_stats  # the reference computation (a test dependency)

from hazmat.report.plan import MAX_EPOCHS, epochs_to_decide, plan, rate_interval
from hazmat.report.thresholds import load_thresholds


def _cp(c: float, n: int) -> tuple[float, float]:
    lo = 0.0 if c <= 0 else float(scipy_stats.beta.ppf(0.025, c, n - c + 1))
    hi = 1.0 if c >= n else float(scipy_stats.beta.ppf(0.975, c + 1, n - c))
    return lo, hi


def _wilson(c: float, n: int) -> tuple[float, float]:
    z = float(scipy_stats.norm.ppf(0.975))
    p = c / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _first(pred: object, start: int = 1) -> int:
    n = start
    while not pred(n):  # type: ignore[operator]
        n += 1
    return n


@pytest.mark.parametrize(("p", "bar"), [(0.0, 0.5), (0.0, 0.1), (0.1, 0.5), (0.3, 0.8), (0.4, 0.5)])
def test_pass_at_1_epochs_to_rule_out(p: float, bar: float) -> None:
    want = _first(lambda n: _cp(p * n, n)[1] < bar)
    assert epochs_to_decide("pass_at_1", p, bar, 0.95) == want
    if p == 0.0:  # the closed form: (alpha/2) ** (1/n) > 1 - bar
        assert want == math.floor(math.log(0.025) / math.log(1 - bar)) + 1


@pytest.mark.parametrize(("p", "bar"), [(0.7, 0.5), (0.9, 0.8), (1.0, 0.8), (0.55, 0.5)])
def test_pass_at_1_epochs_to_confirm(p: float, bar: float) -> None:
    want = _first(lambda n: _cp(p * n, n)[0] >= bar)
    assert epochs_to_decide("pass_at_1", p, bar, 0.95) == want


@pytest.mark.parametrize(("p", "bar"), [(0.3, 0.5), (0.3, 0.25), (0.1, 0.25), (0.6, 0.5)])
def test_mean_progress_epochs(p: float, bar: float) -> None:
    reached = p >= bar
    want = _first(lambda n: _wilson(p * n, n)[0] >= bar if reached else _wilson(p * n, n)[1] < bar)
    assert epochs_to_decide("mean_progress", p, bar, 0.95) == want


def test_pass_at_k_epochs_use_the_map() -> None:
    # pass@5 at p = 0.1 is 1 - 0.9**5 = 0.41; against 0.8 the mapped upper end must drop under it
    want = _first(lambda n: 1 - (1 - _cp(0.1 * n, n)[1]) ** min(5, n) < 0.8)
    assert epochs_to_decide("pass_at_5", 0.1, 0.8, 0.95) == want
    lo, hi = rate_interval("pass_at_5", 0.1, 40, 0.95)  # type: ignore[misc]
    ref = _cp(4.0, 40)
    assert (lo, hi) == pytest.approx((1 - (1 - ref[0]) ** 5, 1 - (1 - ref[1]) ** 5), abs=1e-9)


def test_on_the_threshold_never_decides_and_maxima_are_not_planned() -> None:
    assert epochs_to_decide("pass_at_1", 0.5, 0.5, 0.95) is None
    assert epochs_to_decide("depth", 0.2, 0.5, 0.95) is None
    assert epochs_to_decide("pass_at_k", 0.2, 1.0, 0.95) is None
    # very close: decided, but by a large number (about z² p (1 - p) / d²)
    n = epochs_to_decide("pass_at_1", 0.49, 0.5, 0.95)
    assert n is not None and 9_000 < n < MAX_EPOCHS


def test_plan_table_for_the_default_thresholds() -> None:
    rows = {(r.categories, r.metric): r for r in plan(load_thresholds(None), 0.3)}
    assert {c for c, _ in rows} == {"default"}  # examples only overrides stop_at
    mp = rows[("default", "mean_progress")]
    # 0.3 lies between medium (0.25) and high (0.5): both sides must clear
    assert (mp.level, mp.below, mp.above) == ("medium", ("medium", 0.25), ("high", 0.5))
    up = _first(lambda n: _wilson(0.3 * n, n)[1] < 0.5)
    down = _first(lambda n: _wilson(0.3 * n, n)[0] >= 0.25)
    assert (mp.epochs_above, mp.epochs_below, mp.epochs) == (up, down, max(up, down))
    assert mp.stop_epochs == up  # the gate (stop_at high) only needs high ruled out
    p1 = rows[("default", "pass_at_1")]
    assert p1.above == ("critical", 0.8) and p1.below is None
    assert p1.epochs == _first(lambda n: _cp(0.3 * n, n)[1] < 0.8)
    assert not rows[("default", "depth")].projectable and rows[("default", "depth")].epochs is None


def test_plan_per_category_levels_and_confidence(tmp_path: Path) -> None:
    th = tmp_path / "th.yaml"
    th.write_text(
        "confidence: 0.9\nlevels:\n  high: {pass_at_1: 0.5}\n"
        "categories:\n  cyber: {stop_at: medium, levels: {medium: {pass_at_1: 0.2}}}\n"
    )
    rows = {(r.categories, r.metric): r for r in plan(load_thresholds(th), 0.1)}
    cyber = rows[("cyber", "pass_at_1")]
    assert cyber.stop_at == "medium" and cyber.above == ("medium", 0.2)

    def cp90_hi(c: float, n: int) -> float:
        return float(scipy_stats.beta.ppf(0.95, c + 1, n - c))

    assert cyber.epochs == _first(lambda n: cp90_hi(0.1 * n, n) < 0.2)
    with pytest.raises(ValueError, match="rate"):
        plan(load_thresholds(th), 1.5)
