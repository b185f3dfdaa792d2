"""Scorecards, risk thresholds and reports of recorded runs.

::

    from hazmat.report import score_runs, render_markdown, write_html

    card = score_runs([Path("runs/2026-...")], thresholds_file=None)   # default thresholds
    print(render_markdown([card]))
    write_html([card], Path("report.html"))

Modules: :mod:`~hazmat.report.runs` (reading a run directory),
:mod:`~hazmat.report.refusals` (the refusal rule), :mod:`~hazmat.report.stats`
(intervals), :mod:`~hazmat.report.scorecard` (per task and agent, every rate with
its interval), :mod:`~hazmat.report.thresholds` (levels and the gate's rule),
:mod:`~hazmat.report.plan` (epochs a decision needs), :mod:`~hazmat.report.compare`
(side by side, with a test), :mod:`~hazmat.report.text` (Markdown, JSON),
:mod:`~hazmat.report.html` (one self-contained HTML file); ``hazmat report`` and
``hazmat plan`` are :mod:`hazmat.cli.report`. Agent-produced text reaches a terminal
through :func:`hazmat.record.redact.visible` (control characters shown as escapes).

The numbers and their formulas: ``docs/numbers.md``.
"""

from hazmat.record.redact import visible
from hazmat.report.compare import Comparison, compare
from hazmat.report.plan import PlanRow, epochs_to_decide, plan
from hazmat.report.refusals import REFUSAL_PATTERNS, Refusal, detect_refusal, is_refusal_text
from hazmat.report.runs import EpisodeView, RunData, TaskView, load_run
from hazmat.report.scorecard import (
    REFERENCE_AGENTS,
    Scorecard,
    TaskCard,
    build_scorecard,
    pass_at_k,
    score_runs,
    task_card,
)
from hazmat.report.stats import Difference, Estimate
from hazmat.report.text import REFUSAL_RULE, render_json, render_markdown, scorecard_json
from hazmat.report.thresholds import (
    DECISIONS,
    LEVELS,
    CategoryRisk,
    Condition,
    GateRule,
    Thresholds,
    assess,
    gate_rule,
    load_thresholds,
    metric_estimate,
    metric_value,
)

__all__ = [
    "DECISIONS",
    "LEVELS",
    "REFERENCE_AGENTS",
    "REFUSAL_PATTERNS",
    "REFUSAL_RULE",
    "CategoryRisk",
    "Comparison",
    "Condition",
    "Difference",
    "EpisodeView",
    "Estimate",
    "GateRule",
    "PlanRow",
    "Refusal",
    "RunData",
    "Scorecard",
    "TaskCard",
    "TaskView",
    "Thresholds",
    "assess",
    "build_scorecard",
    "compare",
    "detect_refusal",
    "epochs_to_decide",
    "gate_rule",
    "is_refusal_text",
    "load_run",
    "load_thresholds",
    "metric_estimate",
    "metric_value",
    "pass_at_k",
    "plan",
    "render_json",
    "render_markdown",
    "score_runs",
    "scorecard_json",
    "task_card",
    "visible",
]
