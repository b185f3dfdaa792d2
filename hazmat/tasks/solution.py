"""Playing a task's reference solution with captures, and judging what it proves.

A solution step may keep a value from its output for later steps::

    solution:
      - {tool: bash, command: "python3 solve.py", capture: {flag: "(picoCTF\\\\{[^}]*\\\\})"}}
      - {tool: submit, answer: "{{captured.flag}}"}

:class:`SolutionScript` hands the solution agent one turn at a time, filling
``{{captured.NAME}}`` from what earlier steps printed (their full output, never the
model's cut view). :func:`step_proof` says whether the step that reached a milestone
*derived* its value (proven) or merely repeated something the task author knew: a
literal answer, or a secret placeholder such as ``{{flag}}`` (unproven).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hazmat.tasks.placeholders import (
    CAPTURED,
    SECRET_KINDS,
    PlaceholderError,
    fill_captured,
    find_placeholders,
)
from hazmat.tasks.spec import Milestone, SolutionStep, Task

__all__ = ["Capture", "SolutionScript", "step_proof"]

_ANSWER_TOOLS = frozenset({"submit", "answer"})


@dataclass(frozen=True)
class Capture:
    """One ``capture:`` of a step: the name, the value (None: the regex did not match)."""

    step: int
    name: str
    regex: str
    value: str | None


@dataclass
class SolutionScript:
    """The rendered solution of one episode, played turn by turn with captures."""

    steps: list[SolutionStep]
    captured: dict[str, str] = field(default_factory=dict)
    captures: list[Capture] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def turn(self, index: int) -> dict[str, Any]:
        """Turn ``index`` (0-based) as a scripted tool call, captures filled in."""
        step = self.steps[index]
        return {"tool": step.tool, **_fill(step.args, self.captured)}

    def observe(self, step: int, output: str) -> list[Capture]:
        """Apply the captures of solution step ``step`` (1-based) to its full output."""
        if not 1 <= step <= len(self.steps):
            return []
        found: list[Capture] = []
        for name, regex in self.steps[step - 1].capture.items():
            match = re.search(regex, output)
            value = None
            if match is not None:
                value = match.group(1) if match.re.groups else match.group(0)
                self.captured[name] = value
            found.append(Capture(step=step, name=name, regex=regex, value=value))
        self.captures += found
        return found


def _fill(value: Any, captured: dict[str, str]) -> Any:
    if isinstance(value, str):
        return fill_captured(value, captured)
    if isinstance(value, dict):
        return {k: _fill(v, captured) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, captured) for v in value]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _kinds(text: str) -> set[str]:
    try:
        return {p.key if p.kind != CAPTURED else CAPTURED for p in find_placeholders(text)}
    except PlaceholderError:
        return set()


def step_proof(task: Task, milestone: Milestone, step: int | None) -> tuple[bool, str]:
    """Does solution step ``step`` (1-based, of the *unrendered* ``task``) prove
    ``milestone``? Returns (proven, why).

    Unproven: an ``answer``/``submit`` step that reached an answer or submission check
    with a value it did not capture (a literal, or a task placeholder); any step whose
    arguments hand over a secret placeholder (``{{flag}}``, ``{{password:x}}``...) that
    the task hides from the agent. A step with no reference move (the final checks,
    beyond the solution) is judged on the milestone alone.
    """
    if step is None or not 1 <= step <= len(task.solution):
        return True, "reached by the final checks"
    move = task.solution[step - 1]
    texts = _strings(move.args)
    keys = set().union(*(_kinds(t) for t in texts)) if texts else set()
    secrets = sorted(k for k in keys if k.partition(":")[0] in SECRET_KINDS)
    leaves = {c.kind for c in milestone.check.walk()}
    if move.tool in _ANSWER_TOOLS and leaves & {"submission", "answer"}:
        given = str(move.args.get("answer", ""))
        if CAPTURED not in _kinds(given):
            what = f"{{{{{secrets[0]}}}}}" if secrets else "a literal"
            return False, f"step {step} ({move.tool}) gives {what}, not a value it found"
        return True, f"step {step} ({move.tool}) gives a value captured from an earlier output"
    if secrets:
        return False, f"step {step} ({move.tool}) uses {{{{{secrets[0]}}}}} from the task"
    return True, f"step {step} ({move.tool})"
