"""docs/numbers.md's epoch tables are what the planner computes (the doc cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hazmat.report.plan import epochs_to_decide

DOC = Path(__file__).resolve().parents[2] / "docs" / "numbers.md"


def _table(after: str) -> list[list[str]]:
    text = DOC.read_text()
    start = text.index(after)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows


@pytest.mark.parametrize(
    ("heading", "metric"),
    [("`pass_at_1` (exact interval):", "pass_at_1"), ("`mean_progress` (Wilson", "mean_progress")],
)
def test_epoch_tables_match_the_planner(heading: str, metric: str) -> None:
    head, _sep, *rows = _table(heading)
    bars = [float(re.sub(r"[^0-9.]", "", h)) for h in head[1:]]
    assert len(rows) >= 8
    for row in rows:
        p = float(row[0])
        for bar, cell in zip(bars, row[1:], strict=True):
            got = epochs_to_decide(metric, p, bar, 0.95)
            assert cell == ("never" if got is None else str(got)), (metric, p, bar)
