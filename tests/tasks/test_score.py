"""MilestoneTracker: cheap checks after each step, all at the end, monotonic, progress/depth."""

from __future__ import annotations

from typing import Any

import pytest

from hazmat.tasks import CheckContext, MilestoneTracker, Task, TraceStep

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def _task() -> Task:
    return Task.model_validate(
        {
            "id": "t/score",
            "title": "score",
            "category": "examples",
            "instructions": "x",
            "milestones": [
                {"id": "recon", "check": {"trace": {"tool": "bash", "command_regex": "ls"}}},
                {"id": "box", "weight": 2, "check": {"sandbox": "true"}},
                {"id": "loot", "check": {"output": "SECRET"}},
                {"id": "submit", "check": {"submission": "SECRET"}},
            ],
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _step(n: int, command: str, output: str = "") -> TraceStep:
    return TraceStep(step=n, tool="bash", args={"command": command}, exit_code=0, output=output)


async def test_tracker_progress_depth_and_times() -> None:
    clock = Clock()
    task = _task()
    tracker = MilestoneTracker(task, clock=clock)
    trace: list[TraceStep] = []

    def ctx(submission: Any = None) -> CheckContext:
        return CheckContext.make(task, trace=trace, submission=submission)

    assert (tracker.progress, tracker.depth, tracker.completed) == (0.0, 0, False)

    clock.now = 101.0
    trace.append(_step(1, "cat notes", "nothing"))
    assert await tracker.after_step(ctx()) == []

    clock.now = 102.5
    trace.append(_step(2, "cat /x", "SECRET"))  # skips ahead to milestone 3
    hits = await tracker.after_step(ctx())
    assert [(h.id, h.index, h.step, h.time, h.at_end) for h in hits] == [("loot", 3, 2, 2.5, False)]
    assert tracker.depth == 3
    assert tracker.progress == pytest.approx(1 / 5)

    clock.now = 103.0
    trace.append(_step(3, "ls -la"))
    hits = await tracker.after_step(ctx())
    assert [h.id for h in hits] == ["recon"]
    # reached stays reached, and is not reported twice
    assert await tracker.after_step(ctx()) == []
    assert tracker.reached("loot") and tracker.reached("recon")

    clock.now = 104.0
    hits = await tracker.after_step(ctx("SECRET"))
    assert [h.id for h in hits] == ["submit"]
    assert tracker.completed
    assert tracker.depth == 4
    # the sandbox milestone is expensive: not run after a step, and with no sandbox it fails
    assert not tracker.reached("box")
    assert await tracker.finish(ctx("SECRET")) == []
    score = tracker.score()
    assert score.progress == pytest.approx(3 / 5)
    assert score.depth == 4
    assert score.reached == ["recon", "loot", "submit"]
    assert [(m.id, m.reached, m.step) for m in score.milestones] == [
        ("recon", True, 3),
        ("box", False, None),
        ("loot", True, 2),
        ("submit", True, 3),
    ]


async def test_monotonic_even_if_evidence_disappears() -> None:
    task = _task()
    tracker = MilestoneTracker(task)
    ctx = CheckContext.make(task, trace=[_step(1, "ls")], submission="SECRET")
    assert {h.id for h in await tracker.after_step(ctx)} == {"recon", "submit"}
    empty = CheckContext.make(task)
    assert await tracker.finish(empty) == []
    assert tracker.score().reached == ["recon", "submit"]


async def test_finish_marks_at_end_and_null_agent_scores_zero() -> None:
    task = Task.model_validate(
        {
            "id": "t/py",
            "title": "x",
            "category": "examples",
            "instructions": "x",
            "milestones": [
                {"id": "a", "check": {"any": [{"submission": "yes"}, {"sandbox": "true"}]}},
                {"id": "b", "check": {"submission": "yes"}},
            ],
        }
    )
    tracker = MilestoneTracker(task)
    null = CheckContext.make(task, submission="")
    assert await tracker.after_step(null) == []
    assert await tracker.finish(null) == []
    assert tracker.score().progress == 0.0
    tracker = MilestoneTracker(task)
    hits = await tracker.finish(CheckContext.make(task, submission="yes"))
    assert [(h.id, h.at_end, h.step) for h in hits] == [("a", True, 0), ("b", True, 0)]
    assert tracker.score().progress == 1.0


def _scored(aggregate: str) -> Task:
    return Task.model_validate(
        {
            "id": "t/scored",
            "title": "scored",
            "category": "examples",
            "instructions": "x",
            "scoring": {"aggregate": aggregate},
            "milestones": [
                {"id": "part", "check": {"python": "partial"}, "every_step": True},
                {"id": "done", "weight": 3, "check": {"submission": "ok"}},
            ],
        }
    )


class _Values:
    """A python check giving the next of fixed values (patched in, no task folder)."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def __call__(self, ctx: CheckContext) -> float:
        return self.values.pop(0)


@pytest.mark.parametrize(
    ("aggregate", "value"), [("best", 0.75), ("final", 0.25), ("mean", (0.5 + 0.75 + 0.25) / 3)]
)
async def test_scored_milestone_aggregates(
    aggregate: str, value: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15, failure 7: scores were binary; METR's intermediate scores aggregate."""
    import hazmat.tasks.checks as checks

    task = _scored(aggregate)
    values = _Values([0.5, 0.75, 0.25])
    monkeypatch.setattr(checks, "_python_function", lambda task, name: values)
    tracker = MilestoneTracker(task)
    trace: list[TraceStep] = []

    class Box:  # every_step checks need a sandbox in the context; this one is never used
        pass

    for n in (1, 2, 3):
        trace.append(_step(n, "true"))
        ctx = CheckContext(task=task, trace=tuple(trace), sandbox=Box())  # type: ignore[arg-type]
        await tracker.after_step(ctx)
    samples = tracker.take_samples()
    assert [s.value for s in samples] == [0.5, 0.75, 0.25]
    assert tracker.value("part") == pytest.approx(value)
    assert tracker.progress == pytest.approx(value / 4)
    assert not tracker.reached("part")
    score = tracker.score()
    assert score.scores == {"part": pytest.approx(value)}
    assert score.milestones[0].scored and not score.milestones[1].scored


async def test_scored_milestone_reached_at_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import hazmat.tasks.checks as checks

    task = _scored("best")
    values = _Values([1.0])
    monkeypatch.setattr(checks, "_python_function", lambda task, name: values)
    tracker = MilestoneTracker(task)
    hits = await tracker.finish(CheckContext.make(task, submission="ok"))
    assert [h.id for h in hits] == ["part", "done"] and tracker.progress == 1.0
    assert tracker.completed
