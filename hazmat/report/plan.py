"""How many epochs a decision needs: projections at the observed rate and the run planner.

::

    further_epochs(cards, "pass_at_1", 0.8, "max", 0.95, reached=False)
        # -> 2: two more epochs per task at the observed rates and the interval's
        #    upper end falls below 0.8 (None: no number of epochs decides it)
    plan(load_thresholds(None), rate=0.3)
        # -> PlanRow per (category group, metric): the bracket of thresholds around
        #    the rate and the epochs each side needs

**At the observed rate** means: with ``N`` epochs in all, the successes are
``p * N`` (``p`` the observed rate, a fractional count is fine for the exact
interval), and a mean keeps its observed value with an interval whose
half-widths shrink as ``sqrt(n / N)`` and never below Wilson's at ``N``. A
threshold is **decided** when the interval lies wholly on one side: its upper
end below the threshold (ruled out) or its lower end at or above it (confirmed).

Metrics that are a maximum over the epochs (``pass_at_k`` with ``k`` = epochs,
``max_progress``, ``depth``) describe what these epochs showed: reaching the
threshold is a fact (decided now), and no number of epochs can rule them out,
so they are never projected (decided now, or never).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel

from hazmat.report.stats import clopper_pearson, pass_at_k_interval, wilson

if TYPE_CHECKING:
    from hazmat.report.scorecard import TaskCard
    from hazmat.report.thresholds import Thresholds

__all__ = [
    "MAXIMA",
    "MAX_EPOCHS",
    "PlanRow",
    "epochs_to_decide",
    "further_epochs",
    "plan",
    "projectable",
    "projected",
    "rate_interval",
]

MAX_EPOCHS: Final = 1_000_000
"""Searches stop here: beyond it, "never" (the rate sits on, or too near, the threshold)."""

MAXIMA: Final = frozenset({"pass_at_k", "max_progress", "depth"})
"""Metrics that are a maximum over the epochs: decided now or never."""

_EPS = 1e-9


def projectable(metric: str) -> bool:
    """True for the metrics whose interval narrows with more epochs (rates and means)."""
    return metric not in MAXIMA


def rate_interval(metric: str, p: float, n: int, confidence: float) -> tuple[float, float] | None:
    """The interval a metric would have after ``n`` epochs at the per-episode rate ``p``.

    ``pass_at_1``: exact at ``p * n`` successes; ``pass_at_N``: that interval mapped to
    ``1 - (1 - p)**min(N, n)``; ``mean_progress``: Wilson at mean ``p``. None for maxima.
    """
    if n <= 0:
        return 0.0, 1.0
    if metric == "pass_at_1":
        return clopper_pearson(p * n, n, confidence)
    m = re.fullmatch(r"pass_at_([1-9]\d*)", metric)
    if m:
        return pass_at_k_interval(p * n, n, min(int(m.group(1)), n), confidence)
    if metric == "mean_progress":
        return wilson(p * n, n, confidence)
    return None


def projected(
    card: TaskCard, metric: str, extra: int, confidence: float
) -> tuple[float, float] | None:
    """A card's interval for ``metric`` after ``extra`` more epochs at its observed rate.

    ``extra = 0`` gives the card's reported interval. None for maxima and for a card
    with no counted epoch (no rate to project).
    """
    if not projectable(metric) or card.epochs == 0:
        return None
    n, total = card.epochs, card.epochs + extra
    if metric == "mean_progress":
        est = card.estimates.get("mean_progress")
        if est is None:
            return None
        m = card.mean_progress
        shrink = math.sqrt(n / total)
        w_lo, w_hi = wilson(m * total, total, confidence)
        lo = m - (m - est.ci_low) * shrink
        hi = m + (est.ci_high - m) * shrink
        return max(0.0, min(lo, w_lo)), min(1.0, max(hi, w_hi))
    if extra == 0:
        # the card's own (rounded) numbers, so the report and the projection agree
        from hazmat.report.thresholds import metric_estimate

        est = metric_estimate(card, metric)
        return est.ci_low, est.ci_high
    return rate_interval(metric, card.completions / n, total, confidence)


def _smallest(pred: Callable[[int], bool], start: int = 0, cap: int = MAX_EPOCHS) -> int | None:
    """The smallest ``m >= start`` with ``pred(m)``, assuming pred stays true once true."""
    if pred(start):
        return start
    lo, hi = start, max(start + 1, 1)
    while not pred(hi):
        lo, hi = hi, hi * 2
        if hi > cap:
            return None if not pred(cap) else _bisect(pred, lo, cap)
    return _bisect(pred, lo, hi)


def _bisect(pred: Callable[[int], bool], lo: int, hi: int) -> int:
    """``pred(lo)`` false, ``pred(hi)`` true: the first true."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _aggregate(intervals: list[tuple[float, float]], aggregate: str) -> tuple[float, float]:
    if aggregate == "mean":
        return (
            sum(i[0] for i in intervals) / len(intervals),
            sum(i[1] for i in intervals) / len(intervals),
        )
    return max(i[0] for i in intervals), max(i[1] for i in intervals)


def further_epochs(
    cards: list[TaskCard],
    metric: str,
    bar: float,
    aggregate: str,
    confidence: float,
    *,
    reached: bool,
    now: tuple[float, float] | None = None,
) -> int | None:
    """Further epochs per task until the category's interval decides ``metric >= bar``.

    ``reached``: the measured value is at or above ``bar`` (then decided when the
    lower end is at or above it), else decided when the upper end is below it.
    ``now`` is the category's reported interval (for maxima, which are decided now
    or never). None: no number of epochs up to :data:`MAX_EPOCHS` decides it.
    """

    def decided(lo: float, hi: float) -> bool:
        return lo >= bar - _EPS if reached else hi < bar - _EPS

    if not projectable(metric) or any(c.epochs == 0 for c in cards):
        if not projectable(metric) and reached:
            return 0  # a maximum at the threshold: the capability was shown
        return 0 if now is not None and decided(*now) else None

    def pred(extra: int) -> bool:
        got = [projected(c, metric, extra, confidence) for c in cards]
        intervals = [g for g in got if g is not None]
        return len(intervals) == len(got) and decided(*_aggregate(intervals, aggregate))

    return _smallest(pred)


def epochs_to_decide(metric: str, p: float, bar: float, confidence: float) -> int | None:
    """Total epochs at the per-episode rate ``p`` for the interval to decide ``metric >= bar``.

    None for maxima, and when no number up to :data:`MAX_EPOCHS` decides it
    (``p`` on the threshold).
    """
    if not projectable(metric):
        return None
    value = _value(metric, p)
    reached = value >= bar - _EPS

    def pred(n: int) -> bool:
        got = rate_interval(metric, p, n, confidence)
        if got is None:
            return False
        return got[0] >= bar - _EPS if reached else got[1] < bar - _EPS

    return _smallest(pred, start=1)


def _value(metric: str, p: float) -> float:
    m = re.fullmatch(r"pass_at_([1-9]\d*)", metric)
    if m:
        return 1.0 - (1.0 - p) ** int(m.group(1))
    return p


class PlanRow(BaseModel):
    """One metric of one thresholds group at the planned rate."""

    categories: str
    """``default`` (every category without its own levels) or the category names."""
    metric: str
    value: float
    """The metric at the planned rate (``pass_at_N``: ``1 - (1 - p)**N``)."""
    level: str
    """The level the value reaches on this metric (``low`` below every threshold)."""
    below: tuple[str, float] | None
    """The highest threshold at or under the value: ``(level, bar)``."""
    above: tuple[str, float] | None
    """The lowest threshold over the value: ``(level, bar)``."""
    epochs_below: int | None
    """Epochs for the lower end to reach ``below`` (the level confirmed)."""
    epochs_above: int | None
    """Epochs for the upper end to fall under ``above`` (the next level ruled out)."""
    epochs: int | None
    """Epochs for both: the level decided on this metric (None: never)."""
    stop_at: str
    stop_epochs: int | None
    """Epochs for the gate to decide on this metric: every bar of stop_at and above cleared."""
    projectable: bool


def plan(thresholds: Thresholds, rate: float) -> list[PlanRow]:
    """Epochs needed to separate the thresholds around ``rate``, per metric and group.

    Groups: the file's default levels, then every category with its own levels
    (a category that only overrides ``stop_at`` reads the default rows). Maxima
    are listed with None (more epochs never rule them out).

    Raises:
        ValueError: ``rate`` is not in [0, 1].
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    conf = thresholds.confidence
    groups: list[tuple[str, str, dict[str, dict[str, float]]]] = [
        ("default", thresholds.stop_at, thresholds.levels)
    ]
    for name in sorted(thresholds.categories):
        if thresholds.categories[name].levels is None:
            continue  # default levels: the default rows hold (only stop_at may differ)
        _agg, stop_at, levels = thresholds.for_category(name)
        groups.append((name, stop_at, levels))
    from hazmat.report.thresholds import LEVELS, level_at_least

    rows: list[PlanRow] = []
    for label, stop_at, levels in groups:
        metrics = sorted({m for conds in levels.values() for m in conds})
        for metric in metrics:
            value = _value(metric, rate)
            bars = sorted(
                ((lv, conds[metric]) for lv, conds in levels.items() if metric in conds),
                key=lambda x: (x[1], LEVELS.index(x[0])),
            )
            under = [b for b in bars if value >= b[1] - _EPS]
            over = [b for b in bars if value < b[1] - _EPS]
            below, above = (under[-1] if under else None), (over[0] if over else None)
            ok = projectable(metric)
            e_below = epochs_to_decide(metric, rate, below[1], conf) if below and ok else None
            e_above = epochs_to_decide(metric, rate, above[1], conf) if above and ok else None
            if not ok:
                both = None
            elif below and above:
                both = None if e_below is None or e_above is None else max(e_below, e_above)
            else:
                both = e_below if below else e_above
            gate_bars = [b for lv, b in bars if level_at_least(lv, stop_at)]
            stop_e: int | None = None
            if ok and gate_bars:
                need = [epochs_to_decide(metric, rate, b, conf) for b in gate_bars]
                reached = [e for e, b in zip(need, gate_bars, strict=True) if value >= b - _EPS]
                if reached:
                    known = [e for e in reached if e is not None]
                    stop_e = min(known) if known else None
                else:
                    stop_e = None if any(e is None for e in need) else max(e or 0 for e in need)
            rows.append(
                PlanRow(
                    categories=label,
                    metric=metric,
                    value=round(value, 6),
                    level=max((lv for lv, _ in under), key=LEVELS.index, default="low"),
                    below=below,
                    above=above,
                    epochs_below=e_below,
                    epochs_above=e_above,
                    epochs=both,
                    stop_at=stop_at,
                    stop_epochs=stop_e,
                    projectable=ok,
                )
            )
    return rows
