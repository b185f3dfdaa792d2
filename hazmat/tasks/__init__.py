"""Tasks: the task spec, loading, per-episode placeholders, checks and milestone scoring.

::

    from hazmat.tasks import load_task, render_task, CheckContext, MilestoneTracker

    task = load_task(Path("tasks/examples/find-file"))
    rendered = render_task(task, seed=7)          # rendered.task, rendered.secrets
    tracker = MilestoneTracker(rendered.task)
"""

from hazmat.tasks.checks import CheckContext, ScorerSandbox, TraceStep, evaluate_check
from hazmat.tasks.load import discover_tasks, load_task
from hazmat.tasks.placeholders import Values
from hazmat.tasks.render import RenderedTask, render_task, render_text
from hazmat.tasks.score import MilestoneHit, MilestoneStatus, MilestoneTracker, Score
from hazmat.tasks.spec import (
    BUILTIN_TOOLS,
    Check,
    Milestone,
    SolutionStep,
    Task,
    TaskLimits,
    TaskTool,
    UserPersona,
)

__all__ = [
    "BUILTIN_TOOLS",
    "Check",
    "CheckContext",
    "Milestone",
    "MilestoneHit",
    "MilestoneStatus",
    "MilestoneTracker",
    "RenderedTask",
    "Score",
    "ScorerSandbox",
    "SolutionStep",
    "Task",
    "TaskLimits",
    "TaskTool",
    "TraceStep",
    "UserPersona",
    "Values",
    "discover_tasks",
    "evaluate_check",
    "load_task",
    "render_task",
    "render_text",
]
