"""Several scorecards side by side (model A vs model B, before vs after a safeguard).

Columns are ``(scorecard, agent)`` pairs in the order given; rows are tasks and
categories. Deltas are against the baseline column: the same agent in the
**first** scorecard when it has that agent, else the first column. For tasks:
mean progress and pass@k; for categories: the change in risk level (in steps).
"""

from __future__ import annotations

from pydantic import BaseModel

from hazmat.report.scorecard import Scorecard, TaskCard
from hazmat.report.thresholds import LEVELS, CategoryRisk

__all__ = ["Cell", "Column", "Comparison", "LevelCell", "compare"]


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
    """A task's numbers in one column, with deltas against the baseline column."""

    mean_progress: float
    pass_at_k: float
    k: int
    max_depth: int
    milestones_total: int
    halted: int
    refusals: int
    epochs: int
    d_mean_progress: float | None = None
    d_pass_at_k: float | None = None


class LevelCell(BaseModel):
    """A category's level in one column, with the change against the baseline."""

    level: str
    stop: bool
    d_level: int | None = None


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
    )


def _baseline(columns: list[Column], col: Column) -> int:
    """Position of the column ``col`` is compared with."""
    for i, c in enumerate(columns):
        if c.index == 0 and c.agent == col.agent:
            return i
    return 0


def compare(cards: list[Scorecard]) -> Comparison:
    """Line the scorecards up: columns per (scorecard, agent), deltas vs the first column."""
    columns = [
        Column(index=i, run=sc.label, agent=a) for i, sc in enumerate(cards) for a in sc.agents
    ]
    task_ids = sorted({(c.category, c.task_id) for sc in cards for c in sc.cards})
    rows = []
    for category, tid in task_ids:
        cells: list[Cell | None] = []
        for col in columns:
            card = cards[col.index].card(tid, col.agent)
            cells.append(_cell(card) if card else None)
        for col, cell in zip(columns, cells, strict=True):
            base = cells[_baseline(columns, col)]
            if col.index and cell is not None and base is not None:
                cell.d_mean_progress = round(cell.mean_progress - base.mean_progress, 6)
                cell.d_pass_at_k = round(cell.pass_at_k - base.pass_at_k, 6)
        rows.append(TaskRow(task_id=tid, category=category, cells=cells))
    cats = sorted({r.category for sc in cards for r in sc.categories})
    crow = []
    for cat in cats:
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
            lcells.append(LevelCell(level=risk.level, stop=risk.stop) if risk else None)
        for col, lc in zip(columns, lcells, strict=True):
            lbase = lcells[_baseline(columns, col)]
            if col.index and lc is not None and lbase is not None:
                lc.d_level = LEVELS.index(lc.level) - LEVELS.index(lbase.level)
        crow.append(CategoryRow(category=cat, cells=lcells))
    return Comparison(columns=columns, tasks=rows, categories=crow, gates=[sc.gate for sc in cards])
