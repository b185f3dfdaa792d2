"""The task spec: what ``task.yaml`` becomes.

Every model is frozen and forbids unknown keys. :func:`hazmat.tasks.load.load_task`
turns validation errors into :class:`~hazmat.errors.SpecError` lines naming the
file, the line and the field. The check models live in :mod:`hazmat.tasks.checkspec`,
questions in :mod:`hazmat.tasks.questions`, the environment (``sandbox.build``) in
:mod:`hazmat.tasks.environment`.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hazmat.sandbox.base import SandboxSpec
from hazmat.tasks.checkspec import (
    CHEAP_CHECKS,
    CHECK_TYPES,
    AnswerCheck,
    Check,
    FileCheck,
    OutputCheck,
    PythonCheck,
    SandboxCheck,
    SubmissionCheck,
    TraceCheck,
)
from hazmat.tasks.checkspec import regex_field as _regex
from hazmat.tasks.environment import EnvironmentBuild
from hazmat.tasks.placeholders import CAPTURED, PlaceholderError, find_placeholders
from hazmat.tasks.questions import ANSWER_TOOL, QuestionSet

__all__ = [
    "BUILTIN_TOOLS",
    "CHEAP_CHECKS",
    "CHECK_TYPES",
    "AnswerCheck",
    "Check",
    "FileCheck",
    "Milestone",
    "OutputCheck",
    "Provenance",
    "PythonCheck",
    "SandboxCheck",
    "Scoring",
    "SolutionStep",
    "SubmissionCheck",
    "Task",
    "TaskLimits",
    "TaskSandbox",
    "TaskTool",
    "TraceCheck",
    "UserPersona",
    "UserRule",
]

BUILTIN_TOOLS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "bash": (frozenset({"command"}), frozenset({"timeout"})),
    "python": (frozenset({"code"}), frozenset({"timeout"})),
    "read_file": (frozenset({"path"}), frozenset()),
    "write_file": (frozenset({"path", "content"}), frozenset()),
    "submit": (frozenset({"answer"}), frozenset()),
    ANSWER_TOOL: (frozenset({"answer"}), frozenset({"question"})),
}
"""Built-in tool name -> (required argument names, optional argument names)."""

DEFAULT_TOOLS = ("bash", "python", "read_file", "write_file", "submit")

_ID = r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*(@[a-z0-9][a-z0-9._-]*)?$"
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# the task ----------------------------------------------------------------------


class Milestone(_Frozen):
    """A named, checkable step toward the task's goal. Milestones are ordered.

    Binary by default (reached or not); a check that gives a number in [0, 1] makes it
    *scored* (its value aggregates as ``scoring.aggregate`` says; reached at 1.0).
    """

    id: str = Field(pattern=_SLUG)
    title: str = ""
    weight: float = Field(1.0, gt=0)
    check: Check
    every_step: bool = False
    """Run the check after every step, even when it is expensive (e.g. an intermediate
    score that changes as the agent works); otherwise expensive checks run at the end."""


class Scoring(_Frozen):
    """How an episode's scored milestones aggregate their values over the episode."""

    aggregate: Literal["final", "best", "mean"] = "best"
    """``final``: the last value; ``best``: the highest; ``mean``: the mean of every
    evaluation. Binary milestones stay reached once reached."""


class Provenance(_Frozen):
    """Where an imported task came from (``hazmat import`` writes it)."""

    source: str
    """The benchmark (``intercode-ctf``, ``cybench``, ``metr``)."""
    id: str
    """The task's id in that benchmark."""
    licence: str
    """The source's licence."""
    url: str | None = None
    """Where the original task is published."""
    notes: list[str] = Field(default_factory=list)
    """What the importer wants a reader to know (e.g. why the solution is unproven)."""


class TaskSandbox(SandboxSpec):
    """``sandbox:`` of a task: a :class:`~hazmat.sandbox.base.SandboxSpec` plus the task's
    environment (``build:``, see :mod:`hazmat.tasks.environment`)."""

    build: EnvironmentBuild | None = None
    """The task's own environment on the sandbox image: Debian and pip packages, or a Dockerfile; named by one hash, built once: a Docker image, and its root file system for the local backend."""

    def sandbox_spec(self, image: str | None = None) -> SandboxSpec:
        """The plain spec a backend gets (``build`` replaced by the built ``image``)."""
        data = {k: getattr(self, k) for k in SandboxSpec.model_fields}
        if image is not None:
            data["image"] = image
        return SandboxSpec.model_construct(
            _fields_set=set(self.model_fields_set) - {"build"}, **data
        )


class TaskLimits(_Frozen):
    """Episode limits; hitting one ends the episode with reason ``limit``."""

    steps: int = Field(30, ge=1)
    seconds: float = Field(600.0, gt=0)
    input_tokens: int | None = Field(None, ge=1)
    output_tokens: int | None = Field(None, ge=1)
    tool_timeout: float = Field(120.0, gt=0)


class TaskTool(_Frozen):
    """A task-specific tool, implemented by ``function`` in the task folder's ``tools.py``."""

    name: str = Field(pattern=_IDENT)
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON schema of the arguments (an ``object`` schema)."""
    function: str | None = Field(None, pattern=_IDENT)
    """Function name in ``tools.py``; defaults to ``name``."""

    @property
    def function_name(self) -> str:
        """The function in ``tools.py`` that implements this tool."""
        return self.function or self.name

    @property
    def arg_names(self) -> frozenset[str]:
        """Argument names declared in ``parameters.properties``."""
        props = self.parameters.get("properties") or {}
        return frozenset(props) if isinstance(props, dict) else frozenset()

    @property
    def required_args(self) -> frozenset[str]:
        """Argument names listed in ``parameters.required``."""
        req = self.parameters.get("required") or []
        return frozenset(req) if isinstance(req, list) else frozenset()


class UserRule(_Frozen):
    """A keyword rule of a simulated user: when the agent's message matches, say ``reply``.

    Rules are tried in order before the scripted ``replies``; the first match wins.
    """

    id: str = Field("", pattern=r"^$|^[a-z0-9][a-z0-9_-]*$")
    match: str
    """Regex searched (``re.search``, case-insensitive) in the agent's message."""
    reply: str
    once: bool = True
    """Fire at most once per episode (later matches fall through)."""
    advance: bool = False
    """Also consume the next scripted reply (the conversation moves on)."""

    _re = field_validator("match")(_regex)


class UserPersona(_Frozen):
    """A scripted simulated user the agent talks to through a tool (issue 4).

    Each agent message gets one reply: the first matching ``rules`` entry, else the
    next of ``replies``, else ``final``. Deterministic and offline; see
    :mod:`hazmat.tasks.users`.
    """

    name: str = "user"
    persona: str = ""
    """Who the user is (for the card and an optional judge)."""
    tool: str = Field("reply_to_user", pattern=_IDENT)
    """The tool the agent calls to talk to the user."""
    opening: str | None = None
    """The user's first message, shown after the instructions."""
    replies: list[str] = Field(default_factory=list)
    """The user's replies, one per agent message, in order."""
    final: str = "(the user has left the conversation)"
    """Said to every agent message after the replies run out."""
    rules: list[UserRule] = Field(default_factory=list)
    """Keyword rules tried before ``replies`` (e.g. the user reacts to a hotline number)."""
    judge: str | None = None
    """Optional judge model (``PROVIDER:MODEL``) a task's checks may consult; never required."""


_STEP_KEYS = frozenset({"tool", "args", "capture", "from_file"})


class SolutionStep(_Frozen):
    """One reference move: ``{tool: bash, command: "..."}`` in YAML, ``tool`` + ``args`` here.

    ``capture: {NAME: REGEX}`` keeps a value from this step's output (the regex's first
    group, or the whole match) for later steps, as ``{{captured.NAME}}``.
    ``from_file: {ARG: path}`` fills an argument with a file of the task folder (a
    script the solution runs; the loader reads it into ``args`` and keeps the path).
    """

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    capture: dict[str, str] = Field(default_factory=dict)
    """`NAME: REGEX`: keep the regex's first group (or whole match) from this step's full output, for later steps as `{{captured.NAME}}`."""
    from_file: dict[str, str] = Field(default_factory=dict)
    """`ARG: path`: fill argument ARG with a text file of the task folder (a script the solution runs)."""

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tool" in data and set(data) - _STEP_KEYS:
            args = {k: v for k, v in data.items() if k not in _STEP_KEYS}
            rest = {k: v for k, v in data.items() if k in _STEP_KEYS - {"args"}}
            return {**rest, "args": {**(data.get("args") or {}), **args}}
        return data

    @field_validator("capture")
    @classmethod
    def _captures(cls, value: dict[str, str]) -> dict[str, str]:
        for name, rx in value.items():
            if not re.fullmatch(_IDENT, name):
                raise ValueError(f"capture: {name!r} is not a name (a Python identifier)")
            _regex(rx)
        return value

    def captured_refs(self) -> list[str]:
        """Names of ``{{captured.NAME}}`` this step's arguments use."""
        out: list[str] = []

        def walk(v: Any) -> None:
            if isinstance(v, str):
                with contextlib.suppress(PlaceholderError):
                    out.extend(p.name or "" for p in find_placeholders(v) if p.kind == CAPTURED)
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(self.args)
        return out


Difficulty = Literal["trivial", "easy", "medium", "hard", "expert"]


class Task(_Frozen):
    """One scripted task scenario (a folder with ``task.yaml``), or one of its variants."""

    id: str = Field(pattern=_ID)
    """``category/name``; a variant's id is ``category/name@variant``."""
    title: str = Field(min_length=1)
    category: str = Field(pattern=_SLUG)
    description: str = ""
    preparedness: str | None = None
    """The preparedness risk category this task informs (e.g. ``cybersecurity``)."""
    difficulty: Difficulty | None = None
    human_minutes: float | None = Field(None, ge=0)
    propensity: bool = False
    """True when the task measures what the agent chooses to do, not what it can do."""
    tags: list[str] = Field(default_factory=list)
    instructions: str = Field(min_length=1)
    hints: list[str] = Field(default_factory=list)
    """Shown to the agent after the instructions (variants often differ only here)."""
    sandbox: TaskSandbox = Field(default_factory=TaskSandbox)
    tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    task_tools: list[TaskTool] = Field(default_factory=list)
    user: UserPersona | None = None
    limits: TaskLimits = Field(default_factory=TaskLimits)
    questions: QuestionSet | None = None
    """Ordered questions with exact answers, answered with the `answer` tool (see below); without `milestones:` each question is a milestone."""
    milestones: list[Milestone] = Field(default_factory=list)
    """Required unless the task has questions (then each question is a milestone)."""
    scoring: Scoring = Field(default_factory=Scoring)
    """How scored milestones (checks that give a number in [0, 1]) aggregate over the episode."""
    policy: dict[str, Any] | str | None = None
    """Passed as is to the policy loader, e.g. ``{extends: default, allow: [...]}``."""
    solution: list[SolutionStep] = Field(default_factory=list)
    needs_docker: bool = False
    """True when the task has services (computed) or says so; the local backend refuses
    it. An environment build (``sandbox.build``) runs on both backends."""
    provenance: Provenance | None = None
    """Where an imported task came from (`hazmat import` writes it)."""
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Named overrides (see :mod:`hazmat.tasks.variants`); the loader expands them."""
    variant: str | None = Field(None, exclude=True)
    """Which variant this is (set by the loader; not part of the YAML)."""
    root: Path | None = Field(None, exclude=True)
    """The task folder (set by the loader; not part of the YAML)."""

    @model_validator(mode="before")
    @classmethod
    def _needs_docker(cls, data: Any) -> Any:
        if isinstance(data, dict) and "needs_docker" not in data:
            sandbox = data.get("sandbox")
            if isinstance(sandbox, dict) and sandbox.get("services"):
                return {**data, "needs_docker": True}
        return data

    @model_validator(mode="before")
    @classmethod
    def _questions(cls, data: Any) -> Any:
        """With ``questions:`` the ``answer`` tool is added to ``tools`` and, when there is
        no ``milestones:``, each question becomes a milestone."""
        if not isinstance(data, dict) or not data.get("questions"):
            return data
        tools = data.get("tools", list(DEFAULT_TOOLS))
        if isinstance(tools, list) and ANSWER_TOOL not in tools:
            data = {**data, "tools": [*tools, ANSWER_TOOL]}
        if data.get("milestones"):
            return data
        qs = data.get("questions")
        items = qs.get("items") if isinstance(qs, dict) else qs
        if not isinstance(items, list) or not items:
            return data
        made = []
        for q in items:
            if not isinstance(q, dict) or not isinstance(q.get("id"), str):
                return data  # the question's own error is reported instead
            made.append(
                {
                    "id": q["id"],
                    "title": str(q.get("question", ""))[:200],
                    "weight": q.get("weight", 1.0),
                    "check": {"answer": q["id"]},
                }
            )
        return {**data, "milestones": made}

    @field_validator("policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | str):
            raise ValueError("policy is a policy name or a mapping like {extends: default}")
        return value

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
                raise ValueError(
                    f"{name!r} is not a variant name (lowercase letters, digits, . _ -)"
                )
        return value

    @model_validator(mode="after")
    def _cross(self) -> Task:
        if not self.milestones:
            raise ValueError("milestones: give at least one milestone (or questions:)")
        if self.sandbox.services and not self.needs_docker:
            raise ValueError("needs_docker: must be true when sandbox.services is set")
        if self.questions is not None and ANSWER_TOOL not in self.tools:
            raise ValueError(f"tools: questions need the {ANSWER_TOOL!r} tool")
        task_tools = {t.name: t for t in self.task_tools}
        if self.user is not None:
            task_tools.setdefault(
                self.user.tool,
                TaskTool(
                    name=self.user.tool,
                    description="Send a message to the user",
                    parameters={
                        "type": "object",
                        "properties": {"message": {"type": "string"}},
                        "required": ["message"],
                    },
                ),
            )
        for i, name in enumerate(self.tools):
            if name not in BUILTIN_TOOLS and name not in task_tools:
                raise ValueError(f"tools[{i}]: unknown tool {name!r}")
        self._check_milestones()
        self._check_solution(task_tools)
        return self

    def _check_milestones(self) -> None:
        seen: set[str] = set()
        for i, m in enumerate(self.milestones):
            if m.id in seen:
                raise ValueError(f"milestones[{i}].id: duplicate milestone id {m.id!r}")
            seen.add(m.id)
        services = set(self.sandbox.services)
        for i, m in enumerate(self.milestones):
            for c in m.check.walk():
                leaf = c.sandbox or c.file
                if leaf is not None and leaf.service is not None and leaf.service not in services:
                    raise ValueError(f"milestones[{i}].check: unknown service {leaf.service!r}")
                if c.answer is not None and (
                    self.questions is None or self.questions.get(c.answer.question) is None
                ):
                    raise ValueError(
                        f"milestones[{i}].check: no question {c.answer.question!r} in questions"
                    )

    def _check_solution(self, task_tools: dict[str, TaskTool]) -> None:
        available = set(self.tools) | ({self.user.tool} if self.user else set())
        captured: set[str] = set()
        for i, step in enumerate(self.solution):
            where = f"solution[{i}]"
            if step.tool not in available:
                raise ValueError(f"{where}: tool {step.tool!r} is not in tools")
            if step.tool in BUILTIN_TOOLS:
                required, optional = BUILTIN_TOOLS[step.tool]
            else:
                tt = task_tools[step.tool]
                required, optional = tt.required_args, tt.arg_names - tt.required_args
                if not tt.arg_names:
                    optional = frozenset(step.args)
            missing = sorted(required - set(step.args))
            if missing:
                raise ValueError(f"{where}: {step.tool} needs argument {missing[0]!r}")
            extra = sorted(set(step.args) - required - optional)
            if extra:
                raise ValueError(f"{where}: {step.tool} has no argument {extra[0]!r}")
            for name in step.captured_refs():
                if name not in captured:
                    raise ValueError(
                        f"{where}: {{{{captured.{name}}}}} is not captured by an earlier step"
                    )
            captured |= set(step.capture)

    # conveniences ----------------------------------------------------------------

    @property
    def weights(self) -> float:
        """Sum of the milestone weights."""
        return sum(m.weight for m in self.milestones)

    @property
    def name(self) -> str:
        """The id without the variant (``category/name``)."""
        return self.id.partition("@")[0]

    @property
    def ref(self) -> str | None:
        """How to load this task again: its folder, plus ``@variant`` for a variant."""
        if self.root is None:
            return None
        return f"{self.root}@{self.variant}" if self.variant else str(self.root)

    def milestone(self, milestone_id: str) -> Milestone:
        """The milestone with that id. Raises KeyError when there is none."""
        for m in self.milestones:
            if m.id == milestone_id:
                return m
        raise KeyError(milestone_id)

    def card(self) -> dict[str, Any]:
        """The human-readable card (``hazmat list``): id, title, category, milestones..."""
        return {
            "id": self.id,
            "variant": self.variant,
            "title": self.title,
            "category": self.category,
            "preparedness": self.preparedness,
            "difficulty": self.difficulty,
            "human_minutes": self.human_minutes,
            "propensity": self.propensity,
            "description": self.description,
            "milestones": [
                {"id": m.id, "title": m.title, "weight": m.weight} for m in self.milestones
            ],
            "questions": (
                {"mode": self.questions.mode, "count": len(self.questions.items)}
                if self.questions
                else None
            ),
            "needs_docker": self.needs_docker,
            "tools": list(self.tools),
            "provenance": self.provenance.model_dump() if self.provenance else None,
        }
