"""Milestone scoring: which milestones an episode reached, when, and how far it got.

::

    tracker = MilestoneTracker(rendered.task)
    for each step:
        trace.append(TraceStep(...))
        ctx = CheckContext.make(task, trace=trace, submission=sub, secrets=..., sandbox=sb)
        for hit in await tracker.after_step(ctx):      # cheap checks only (by default)
            record("milestone_reached", **hit.model_dump())
        if tracker.completed: end reason "completed"
    hits = await tracker.finish(ctx)                   # every check, before the sandbox stops
    score = tracker.score()                            # progress, depth, per-milestone status

Reached milestones stay reached (monotonic). ``progress`` is the weighted fraction
of milestones reached; ``depth`` is the 1-based index of the furthest milestone
reached (0 when none); ``completed`` means the final milestone was reached.

A *scored* milestone (its check gave a number in [0, 1]) keeps every value it was
evaluated to (:meth:`MilestoneTracker.take_samples` hands the new ones to the recorder);
its value is their aggregate (``scoring.aggregate``: final, best or mean) and counts
toward ``progress`` by its weight. It is *reached* (a milestone event) once its value
is 1.0. Milestones with ``every_step: true`` are evaluated after every step (expensive
checks included when the context has a sandbox); the others' expensive checks at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from hazmat.tasks.checks import CheckContext, evaluate_check
from hazmat.tasks.checkspec import CHEAP_CHECKS, Check
from hazmat.tasks.spec import Milestone, Task

__all__ = ["MilestoneHit", "MilestoneStatus", "MilestoneTracker", "Score", "ScoreSample"]


class MilestoneHit(BaseModel):
    """A milestone reached: which, at which step, when."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    index: int
    """1-based position in the task's milestone list."""
    weight: float
    step: int
    """Steps taken when it was detected (0 before the first step)."""
    time: float
    """Seconds since the tracker started."""
    at_end: bool = False
    """True when detected by the final evaluation rather than after a step."""


class ScoreSample(BaseModel):
    """One evaluation of a scored milestone: its value after ``step`` steps."""

    model_config = ConfigDict(frozen=True)

    id: str
    value: float
    step: int
    aggregate: float
    """The milestone's aggregated value including this sample."""
    at_end: bool = False


class MilestoneStatus(BaseModel):
    """One milestone's outcome in a score."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    index: int
    weight: float
    reached: bool
    step: int | None = None
    time: float | None = None
    at_end: bool = False
    score: float = 0.0
    """The milestone's value: 1.0/0.0 for binary ones, the aggregate for scored ones."""
    scored: bool = False


class Score(BaseModel):
    """How far an episode got."""

    model_config = ConfigDict(frozen=True)

    progress: float
    depth: int
    completed: bool
    reached: list[str]
    milestones: list[MilestoneStatus]
    errors: list[str] = []
    scores: dict[str, float] = {}
    """Values of the scored milestones (aggregated)."""


class MilestoneTracker:
    """Tracks milestones over one episode; see the module doc for the calling pattern."""

    def __init__(
        self,
        task: Task,
        *,
        clock: Callable[[], float] = time.monotonic,
        start: float | None = None,
    ) -> None:
        self.task = task
        self._clock = clock
        self._start = clock() if start is None else start
        self._hits: dict[str, MilestoneHit] = {}
        self._samples: dict[str, list[float]] = {}
        self._new_samples: list[ScoreSample] = []
        self.errors: list[str] = []
        """Texts of python checks that raised (each counted as not passed)."""

    @property
    def hits(self) -> list[MilestoneHit]:
        """Milestones reached, in task order."""
        return [self._hits[m.id] for m in self.task.milestones if m.id in self._hits]

    def reached(self, milestone_id: str) -> bool:
        """True once the milestone was reached."""
        return milestone_id in self._hits

    def value(self, milestone_id: str) -> float:
        """A milestone's value: 1.0 once reached (binary), else its aggregated samples."""
        samples = self._samples.get(milestone_id)
        if samples:
            how = self.task.scoring.aggregate
            if how == "final":
                return samples[-1]
            if how == "mean":
                return sum(samples) / len(samples)
            return max(samples)
        return 1.0 if milestone_id in self._hits else 0.0

    @property
    def progress(self) -> float:
        """Weighted value of the milestones (0.0 - 1.0)."""
        total = self.task.weights
        got = sum(m.weight * self.value(m.id) for m in self.task.milestones)
        return got / total if total else 0.0

    @property
    def depth(self) -> int:
        """1-based index of the furthest milestone reached; 0 when none."""
        return max(
            (i for i, m in enumerate(self.task.milestones, 1) if m.id in self._hits), default=0
        )

    @property
    def completed(self) -> bool:
        """True once the final milestone was reached (end reason ``completed``)."""
        return self.task.milestones[-1].id in self._hits

    def take_samples(self) -> list[ScoreSample]:
        """The scored-milestone samples taken since the previous call (for the record)."""
        out, self._new_samples = self._new_samples, []
        return out

    def _wanted(self, m: Milestone, *, cheap_only: bool, at_end: bool) -> bool:
        # reached: done, unless scored with an aggregate that can still change
        if m.id in self._hits and (
            m.id not in self._samples or self.task.scoring.aggregate == "best"
        ):
            return False
        if at_end or not cheap_only or m.every_step:
            return True
        return m.check.cheap or not _never_cheap(m.check)

    async def _evaluate(
        self, ctx: CheckContext, *, cheap_only: bool, at_end: bool
    ) -> list[MilestoneHit]:
        new: list[MilestoneHit] = []
        for index, m in enumerate(self.task.milestones, 1):
            if not self._wanted(m, cheap_only=cheap_only, at_end=at_end):
                continue
            full = not cheap_only or (m.every_step and ctx.sandbox is not None)
            result = await evaluate_check(m.check, ctx, cheap_only=not full, errors=self.errors)
            if result is None:
                continue
            if not isinstance(result, bool):
                samples = self._samples.setdefault(m.id, [])
                samples.append(float(result))
                self._new_samples.append(
                    ScoreSample(
                        id=m.id,
                        value=float(result),
                        step=ctx.steps,
                        aggregate=self.value(m.id),
                        at_end=at_end,
                    )
                )
                reached = self.value(m.id) >= 1.0
            else:
                reached = result
            if reached and m.id not in self._hits:
                hit = MilestoneHit(
                    id=m.id,
                    title=m.title,
                    index=index,
                    weight=m.weight,
                    step=ctx.steps,
                    time=round(self._clock() - self._start, 6),
                    at_end=at_end,
                )
                self._hits[m.id] = hit
                new.append(hit)
        return new

    async def after_step(self, ctx: CheckContext, *, expensive: bool = False) -> list[MilestoneHit]:
        """Evaluate unreached milestones after a step; returns the newly reached ones.

        Only cheap checks (trace, output, submission, answer) run unless ``expensive``
        is True, or the milestone says ``every_step`` and ``ctx`` has a sandbox. A
        milestone mixing both in ``any``/``all`` is reached when its cheap parts alone
        decide it.

        Raises:
            SandboxError, SpecError: as :func:`~hazmat.tasks.checks.evaluate_check`.
        """
        return await self._evaluate(ctx, cheap_only=not expensive, at_end=False)

    async def finish(self, ctx: CheckContext) -> list[MilestoneHit]:
        """Run every check of every unreached milestone (call before the sandbox stops);
        scored milestones are sampled once more.

        Raises:
            SandboxError, SpecError: as :func:`~hazmat.tasks.checks.evaluate_check`.
        """
        return await self._evaluate(ctx, cheap_only=False, at_end=True)

    def score(self) -> Score:
        """The score so far."""
        statuses = []
        for index, m in enumerate(self.task.milestones, 1):
            hit = self._hits.get(m.id)
            statuses.append(
                MilestoneStatus(
                    id=m.id,
                    title=m.title,
                    index=index,
                    weight=m.weight,
                    reached=hit is not None,
                    step=hit.step if hit else None,
                    time=hit.time if hit else None,
                    at_end=hit.at_end if hit else False,
                    score=self.value(m.id),
                    scored=m.id in self._samples,
                )
            )
        return Score(
            progress=self.progress,
            depth=self.depth,
            completed=self.completed,
            reached=[h.id for h in self.hits],
            milestones=statuses,
            errors=list(self.errors),
            scores={k: self.value(k) for k in self._samples},
        )


def _never_cheap(check: Check) -> bool:
    """True when no cheap part exists in the check (skip it cheaply)."""
    return not any(c.kind in CHEAP_CHECKS for c in check.walk())
