"""Several scorecards side by side (model A vs model B, before vs after a safeguard), with a test.

Columns are ``(scorecard, agent)`` pairs in the order given; rows are tasks and
categories. Each column is compared with its baseline column: the same agent in
the **first** scorecard when it has that agent, else the first column.

A difference is ``column - baseline`` with an interval at the scorecards'
confidence, and it is **significant** only when that interval excludes zero:

* per task, pass@1: Newcombe's hybrid score interval (MOVER on the two Wilson
  intervals); mean progress: MOVER on the two mean-progress intervals
  (:func:`hazmat.report.stats.bounded_mean`);
* per category, **paired by task**: over the tasks both columns ran, the mean of
  the per-task differences, its interval combining theirs
  (:func:`hazmat.report.stats.mover_mean`); tasks only one column ran are
  listed, not counted. The change in risk level (in steps) is shown as well.

The plain deltas (``d_mean_progress``, ``d_pass_at_k``) stay for scripts that
read them; the report marks only significant differences.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from hazmat.report.scorecard import Scorecard, TaskCard
from hazmat.report.stats import Difference, Estimate, mover, mover_mean, newcombe, outward
from hazmat.report.thresholds import LEVELS, CategoryRisk

__all__ = ["Cell", "Column", "Comparison", "LevelCell", "compare", "difference"]


class Column(BaseModel):
    """One column: an agent in one scorecard (run)."""

    index: int
    run: str
    agent: str

    @property
    def label(self) -> str:
        """``run · agent``."""
        return f"{self.run} · {self.agent}"


class Cell(BaseModel):
    """A task's numbers in one column, with differences against the baseline column."""

    mean_progress: float
    pass_at_k: float
    k: int
    max_depth: int
    milestones_total: int
    halted: int
    refusals: int
    epochs: int
    progress: Estimate | None = None
    pass_at_1: Estimate | None = None
    d_mean_progress: float | None = None
    d_pass_at_k: float | None = None
    diff_mean_progress: Difference | None = None
    diff_pass_at_1: Difference | None = None


class LevelCell(BaseModel):
    """A category in one column: level and decision, with paired differences vs the baseline."""

    level: str
    stop: bool
    decision: str = "proceed"
    gated: bool = True
    d_level: int | None = None
    diff_mean_progress: Difference | None = None
    diff_pass_at_1: Difference | None = None
    paired_tasks: list[str] = Field(default_factory=list)
    """Tasks both this column and the baseline ran (the differences are over these)."""
    unpaired_tasks: list[str] = Field(default_factory=list)
    """Tasks of the category only one of the two ran (not in the differences)."""


class TaskRow(BaseModel):
    """One task across the columns (None where a column did not run it)."""

    task_id: str
    category: str
    cells: list[Cell | None]


class CategoryRow(BaseModel):
    """One category across the columns."""

    category: str
    cells: list[LevelCell | None]


class Comparison(BaseModel):
    """Scorecards side by side."""

    columns: list[Column]
    tasks: list[TaskRow]
    categories: list[CategoryRow]
    gates: list[str]
    """Each scorecard's gate, in order."""
    confidence: float = 0.95


def difference(value: float, lo: float, hi: float, method: str) -> Difference:
    """A :class:`Difference`, significant when ``[lo, hi]`` excludes zero."""
    r_lo, r_hi = outward(lo, hi)
    return Difference(
        value=round(value, 6),
        ci_low=r_lo,
        ci_high=r_hi,
        significant=lo > 1e-12 or hi < -1e-12,
        method=method,
    )


def _triple(e: Estimate) -> tuple[float, float, float]:
    return e.value, e.ci_low, e.ci_high


def _task_diffs(
    card: TaskCard, base: TaskCard, confidence: float
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(progress difference, pass@1 difference)`` as ``(d, low, high)``: card - base."""
    prog = mover(_triple(base.estimates["mean_progress"]), _triple(card.estimates["mean_progress"]))
    p1 = newcombe(card.completions, card.epochs, base.completions, base.epochs, confidence)
    return prog, p1


def _cell(card: TaskCard) -> Cell:
    return Cell(
        mean_progress=card.mean_progress,
        pass_at_k=card.pass_at_k,
        k=card.k,
        max_depth=card.max_depth,
        milestones_total=card.milestones_total,
        halted=card.halted,
        refusals=card.refusals,
        epochs=card.epochs,
        progress=card.estimates.get("mean_progress"),
        pass_at_1=card.estimates.get("pass_at_1"),
    )


def _baseline(columns: list[Column], col: Column) -> int:
    """Position of the column ``col`` is compared with."""
    for i, c in enumerate(columns):
        if c.index == 0 and c.agent == col.agent:
            return i
    return 0


def compare(cards: list[Scorecard]) -> Comparison:
    """Line the scorecards up: columns per (scorecard, agent), differences vs the baseline."""
    conf = cards[0].confidence if cards else 0.95
    columns = [
        Column(index=i, run=sc.label, agent=a) for i, sc in enumerate(cards) for a in sc.agents
    ]
    task_ids = sorted({(c.category, c.task_id) for sc in cards for c in sc.cards})
    rows = []
    # per column: task id -> (progress diff, pass@1 diff), for the category rows
    diffs: list[dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]] = [
        {} for _ in columns
    ]
    ran: list[set[str]] = [set() for _ in columns]
    for category, tid in task_ids:
        tcards = [cards[col.index].card(tid, col.agent) for col in columns]
        cells = [_cell(c) if c else None for c in tcards]
        for i, (col, cell) in enumerate(zip(columns, cells, strict=True)):
            if tcards[i] is not None:
                ran[i].add(tid)
            b = _baseline(columns, col)
            base, card = tcards[b], tcards[i]
            if i == b or cell is None or base is None or card is None:
                continue
            base_cell = cells[b]
            assert base_cell is not None
            cell.d_mean_progress = round(cell.mean_progress - base_cell.mean_progress, 6)
            cell.d_pass_at_k = round(cell.pass_at_k - base_cell.pass_at_k, 6)
            if card.epochs and base.epochs:
                prog, p1 = _task_diffs(card, base, conf)
                diffs[i][tid] = (prog, p1)
                cell.diff_mean_progress = difference(*prog, "mover (bootstrap+wilson)")
                cell.diff_pass_at_1 = difference(*p1, "newcombe (hybrid score)")
        rows.append(TaskRow(task_id=tid, category=category, cells=cells))
    cats = sorted({r.category for sc in cards for r in sc.categories})
    crow = []
    for cat in cats:
        cat_tasks = {tid for c, tid in task_ids if c == cat}
        lcells: list[LevelCell | None] = []
        for col in columns:
            risk: CategoryRisk | None = next(
                (
                    r
                    for r in cards[col.index].categories
                    if r.category == cat and r.agent == col.agent
                ),
                None,
            )
            lcells.append(
                LevelCell(
                    level=risk.level, stop=risk.stop, decision=risk.decision, gated=risk.gated
                )
                if risk
                else None
            )
        for i, (col, lc) in enumerate(zip(columns, lcells, strict=True)):
            b = _baseline(columns, col)
            lbase = lcells[b]
            if i == b or lc is None or lbase is None:
                continue
            lc.d_level = LEVELS.index(lc.level) - LEVELS.index(lbase.level)
            mine, theirs = ran[i] & cat_tasks, ran[b] & cat_tasks
            paired = sorted(t for t in mine & theirs if t in diffs[i])
            lc.paired_tasks = paired
            lc.unpaired_tasks = sorted((mine | theirs) - set(paired))
            if paired:
                lc.diff_mean_progress = difference(
                    *mover_mean([diffs[i][t][0] for t in paired]), "paired by task, mover"
                )
                lc.diff_pass_at_1 = difference(
                    *mover_mean([diffs[i][t][1] for t in paired]), "paired by task, newcombe"
                )
        crow.append(CategoryRow(category=cat, cells=lcells))
    return Comparison(
        columns=columns,
        tasks=rows,
        categories=crow,
        gates=[sc.gate for sc in cards],
        confidence=conf,
    )
