"""Comparisons with a test: per-task and per-category differences with intervals, paired by task."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import scipy.stats as scipy_stats  # the reference computation (a test dependency)

from hazmat.report import compare, render_markdown, score_runs
from tests.report.helpers import make_run, write_task


def _eps(task: str, c: int, n: int, agent: str = "m") -> list[dict[str, Any]]:
    return [
        {
            "task": task,
            "agent": agent,
            "epoch": i,
            "status": "completed" if i < c else "submitted",
            "reached": ["m1"] if i < c else [],
            "total": 1,
        }
        for i in range(n)
    ]


def _wilson(c: int, n: int) -> tuple[float, float]:
    ci = scipy_stats.binomtest(c, n).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high)


def _newcombe(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float, float]:
    (l1, u1), (l2, u2) = _wilson(c1, n1), _wilson(c2, n2)
    p1, p2 = c1 / n1, c2 / n2
    d = p1 - p2
    return (
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    tasks = {t: write_task(tmp_path, t, t.split("/")[0], ["m1"]) for t in ("cyber/a", "cyber/b")}
    tasks["cyber/c"] = write_task(tmp_path, "cyber/c", "cyber", ["m1"])
    # A: 2/20 on a, 5/10 on b, 3/5 on c;  B: 15/20 on a, 6/10 on b, c not run
    a = make_run(
        tmp_path / "runs",
        "A",
        _eps("cyber/a", 2, 20) + _eps("cyber/b", 5, 10) + _eps("cyber/c", 3, 5),
        tasks,
    )
    b = make_run(tmp_path / "runs", "B", _eps("cyber/a", 15, 20) + _eps("cyber/b", 6, 10), tasks)
    return a, b


def test_task_differences_are_tested(runs: tuple[Path, Path]) -> None:
    cmp = compare([score_runs([runs[0]]), score_runs([runs[1]])])
    rows = {r.task_id: r for r in cmp.tasks}
    a = rows["cyber/a"].cells[1]
    assert a is not None and a.diff_pass_at_1 is not None
    d, lo, hi = _newcombe(15, 20, 2, 20)
    assert (a.diff_pass_at_1.value, a.diff_pass_at_1.ci_low, a.diff_pass_at_1.ci_high) == (
        pytest.approx(d, abs=2e-6),
        pytest.approx(lo, abs=2e-6),
        pytest.approx(hi, abs=2e-6),
    )
    assert lo > 0 and a.diff_pass_at_1.significant
    b = rows["cyber/b"].cells[1]
    assert b is not None and b.diff_pass_at_1 is not None
    assert b.diff_pass_at_1.value == pytest.approx(0.1) and not b.diff_pass_at_1.significant
    assert rows["cyber/c"].cells[1] is None
    # mean progress of a one-milestone task is pass@1; its interval is at least Wilson's
    assert a.diff_mean_progress is not None and a.diff_mean_progress.significant


def test_category_difference_is_paired_by_task(runs: tuple[Path, Path]) -> None:
    cmp = compare([score_runs([runs[0]]), score_runs([runs[1]])])
    (cat,) = cmp.categories
    cell = cat.cells[1]
    assert cell is not None and cell.diff_pass_at_1 is not None
    assert cell.paired_tasks == ["cyber/a", "cyber/b"] and cell.unpaired_tasks == ["cyber/c"]
    da, la, ua = _newcombe(15, 20, 2, 20)
    db, lb, ub = _newcombe(6, 10, 5, 10)
    d = (da + db) / 2
    assert cell.diff_pass_at_1.value == pytest.approx(d, abs=2e-6)
    assert cell.diff_pass_at_1.ci_low == pytest.approx(
        d - math.sqrt((da - la) ** 2 + (db - lb) ** 2) / 2, abs=2e-6
    )
    assert cell.diff_pass_at_1.ci_high == pytest.approx(
        d + math.sqrt((ua - da) ** 2 + (ub - db) ** 2) / 2, abs=2e-6
    )
    assert cell.diff_pass_at_1.significant


def test_markdown_marks_only_significant_differences(runs: tuple[Path, Path]) -> None:
    text = render_markdown([score_runs([runs[0]]), score_runs([runs[1]])])
    line_a = next(x for x in text.splitlines() if x.startswith("| cyber/a |"))
    line_b = next(x for x in text.splitlines() if x.startswith("| cyber/b |"))
    assert line_a.count(" *") == 2  # progress and pass@1 both excluded zero
    assert "Δ +0.10" in line_b and " *" not in line_b
    assert "2 tasks paired, 1 unpaired" in text


def test_no_change_is_not_significant(tmp_path: Path) -> None:
    tasks = {"cyber/a": write_task(tmp_path, "cyber/a", "cyber", ["m1"])}
    a = make_run(tmp_path / "runs", "A", _eps("cyber/a", 3, 5), tasks)
    b = make_run(tmp_path / "runs", "B", _eps("cyber/a", 3, 5), tasks)
    cmp = compare([score_runs([a]), score_runs([b])])
    cell = cmp.tasks[0].cells[1]
    assert cell is not None and cell.diff_pass_at_1 is not None
    assert cell.diff_pass_at_1.value == 0.0 and not cell.diff_pass_at_1.significant
    assert cell.diff_pass_at_1.ci_low < 0 < cell.diff_pass_at_1.ci_high
