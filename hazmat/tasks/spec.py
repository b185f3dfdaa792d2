"""The task spec: what ``task.yaml`` becomes.

Every model is frozen and forbids unknown keys. :func:`hazmat.tasks.load.load_task`
turns validation errors into :class:`~hazmat.errors.SpecError` lines naming the
file, the line and the field.

A check is a mapping with exactly one key naming its type::

    {sandbox: {command: "test -f /tmp/x", service: web, stdout_regex: "ok"}}   # or {sandbox: "cmd"}
    {file: {path: /tmp/x, exists: true | contains: "..." | regex: "...", service: web}}
    {trace: {tool: bash, command_regex: "find .*-perm", args: {path: "^/etc"}, exit_code: 0}}
    {output: {regex: "HZM\\{", tool: bash}}                                  # or {output: "regex"}
    {submission: {equals: "..." | contains: "..." | regex: "..."}}          # or {submission: "..."}
    {python: {function: name}}                                               # or {python: name}
    {all: [check, ...]}   {any: [check, ...]}

``trace``, ``output`` and ``submission`` are *cheap* (they read the trace only);
``sandbox``, ``file`` and ``python`` are *expensive* (they run in the sandbox or
run task code).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hazmat.sandbox.base import SandboxSpec
from hazmat.tasks.placeholders import neutralize

__all__ = [
    "BUILTIN_TOOLS",
    "CHEAP_CHECKS",
    "CHECK_TYPES",
    "Check",
    "FileCheck",
    "Milestone",
    "OutputCheck",
    "PythonCheck",
    "SandboxCheck",
    "SolutionStep",
    "SubmissionCheck",
    "Task",
    "TaskLimits",
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
}
"""Built-in tool name -> (required argument names, optional argument names)."""

DEFAULT_TOOLS = ("bash", "python", "read_file", "write_file", "submit")

CHECK_TYPES = ("sandbox", "file", "trace", "output", "submission", "python", "all", "any")
CHEAP_CHECKS = frozenset({"trace", "output", "submission"})

_ID = r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$"
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(neutralize(value))
        except re.error as exc:
            raise ValueError(f"bad regex {value!r}: {exc}") from None
    return value


# checks ----------------------------------------------------------------------


class SandboxCheck(_Frozen):
    """A command the scorer runs as root in the sandbox (or a service); passes on exit 0."""

    command: str
    service: str | None = None
    stdout_regex: str | None = None
    """When set, stdout must also match (``re.search``)."""
    timeout: float = Field(60.0, gt=0)

    _re = field_validator("stdout_regex")(_regex)


class FileCheck(_Frozen):
    """A file in the sandbox (read by the scorer as root): exists / contains / regex."""

    path: str
    exists: bool | None = None
    contains: str | None = None
    regex: str | None = None
    service: str | None = None

    _re = field_validator("regex")(_regex)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path must be absolute: {value!r}")
        return value

    @model_validator(mode="after")
    def _one(self) -> FileCheck:
        given = [k for k in ("exists", "contains", "regex") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of exists, contains, regex (got {', '.join(given)})")
        if not given:
            object.__setattr__(self, "exists", True)
        return self


class TraceCheck(_Frozen):
    """A step in the trace whose tool call matches every given condition."""

    tool: str | None = None
    """Tool name (exact); ``None`` matches any tool."""
    command_regex: str | None = None
    """Searched in the call's ``command`` argument (``bash``) or ``code`` (``python``)."""
    args: dict[str, str] = Field(default_factory=dict)
    """Argument name -> regex searched in ``str(value)``; a missing argument fails."""
    exit_code: int | None = None
    include_blocked: bool = False
    """Also count calls the policy refused (they never ran)."""

    _re = field_validator("command_regex")(_regex)

    @field_validator("args")
    @classmethod
    def _args(cls, value: dict[str, str]) -> dict[str, str]:
        for v in value.values():
            _regex(v)
        return value


class OutputCheck(_Frozen):
    """Some tool output (stdout+stderr text, in full) matched ``regex``."""

    regex: str
    tool: str | None = None

    _re = field_validator("regex")(_regex)


class SubmissionCheck(_Frozen):
    """The submitted answer equals / contains / matches (whitespace stripped by default)."""

    equals: str | None = None
    contains: str | None = None
    regex: str | None = None
    ignore_case: bool = False
    strip: bool = True

    _re = field_validator("regex")(_regex)

    @model_validator(mode="after")
    def _one(self) -> SubmissionCheck:
        given = [k for k in ("equals", "contains", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, contains, regex")
        return self


class PythonCheck(_Frozen):
    """``function(ctx) -> bool`` (sync or async) from the task folder's ``checks.py``."""

    function: str = Field(pattern=_IDENT)


_SHORTHAND: dict[str, str] = {
    "sandbox": "command",
    "file": "path",
    "trace": "tool",
    "output": "regex",
    "submission": "equals",
    "python": "function",
}


class Check(_Frozen):
    """A check: a mapping with exactly one key naming its type (see the module doc)."""

    sandbox: SandboxCheck | None = None
    file: FileCheck | None = None
    trace: TraceCheck | None = None
    output: OutputCheck | None = None
    submission: SubmissionCheck | None = None
    python: PythonCheck | None = None
    all: tuple[Check, ...] | None = None
    any: tuple[Check, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, Check):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"a check is a mapping with one of: {', '.join(CHECK_TYPES)}")
        for key in data:
            if key not in CHECK_TYPES:
                raise ValueError(f"unknown check type {key!r}")
        present = [k for k, v in data.items() if v is not None]
        if len(present) != 1:
            got = ", ".join(present) or "none"
            raise ValueError(f"a check has exactly one type (got {got})")
        key = present[0]
        value = data[key]
        if key in _SHORTHAND and isinstance(value, str):
            return {key: {_SHORTHAND[key]: value}}
        if key in ("all", "any") and isinstance(value, list) and not value:
            raise ValueError(f"{key} needs at least one check")
        return {key: value}

    @property
    def kind(self) -> str:
        """The check's type: one of :data:`CHECK_TYPES`."""
        for key in CHECK_TYPES:
            if getattr(self, key) is not None:
                return key
        raise AssertionError("check without a type")  # pragma: no cover - validated

    @property
    def children(self) -> tuple[Check, ...]:
        """The sub-checks of ``all`` / ``any`` (empty for leaf checks)."""
        return self.all or self.any or ()

    @property
    def cheap(self) -> bool:
        """True when the check reads only the trace and submission (no sandbox, no task code)."""
        if self.children:
            return all(c.cheap for c in self.children)
        return self.kind in CHEAP_CHECKS

    def walk(self) -> list[Check]:
        """This check and every check nested in it, depth first."""
        out: list[Check] = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


# the task ----------------------------------------------------------------------


class Milestone(_Frozen):
    """A named, checkable step toward the task's goal. Milestones are ordered."""

    id: str = Field(pattern=_SLUG)
    title: str = ""
    weight: float = Field(1.0, gt=0)
    check: Check


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


class SolutionStep(_Frozen):
    """One reference move: ``{tool: bash, command: "..."}`` in YAML, ``tool`` + ``args`` here."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tool" in data and set(data) - {"tool", "args"}:
            args = {k: v for k, v in data.items() if k != "tool"}
            return {"tool": data["tool"], "args": args}
        return data


Difficulty = Literal["trivial", "easy", "medium", "hard", "expert"]


class Task(_Frozen):
    """One scripted task scenario (a folder with ``task.yaml``)."""

    id: str = Field(pattern=_ID)
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
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)
    tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    task_tools: list[TaskTool] = Field(default_factory=list)
    user: UserPersona | None = None
    limits: TaskLimits = Field(default_factory=TaskLimits)
    milestones: list[Milestone] = Field(min_length=1)
    policy: dict[str, Any] | str | None = None
    """Passed as is to the policy loader, e.g. ``{extends: default, allow: [...]}``."""
    solution: list[SolutionStep] = Field(default_factory=list)
    needs_docker: bool = False
    """True when the task has services (computed) or says so; the local backend refuses it."""
    root: Path | None = Field(None, exclude=True)
    """The task folder (set by the loader; not part of the YAML)."""

    @model_validator(mode="before")
    @classmethod
    def _needs_docker(cls, data: Any) -> Any:
        if isinstance(data, dict) and "needs_docker" not in data:
            sandbox = data.get("sandbox")
            services = sandbox.get("services") if isinstance(sandbox, dict) else None
            if services:
                return {**data, "needs_docker": True}
        return data

    @field_validator("policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | str):
            raise ValueError("policy is a policy name or a mapping like {extends: default}")
        return value

    @model_validator(mode="after")
    def _cross(self) -> Task:
        if self.sandbox.services and not self.needs_docker:
            raise ValueError("needs_docker: must be true when sandbox.services is set")
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
        available = set(self.tools) | ({self.user.tool} if self.user else set())
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
        return self

    # conveniences ----------------------------------------------------------------

    @property
    def weights(self) -> float:
        """Sum of the milestone weights."""
        return sum(m.weight for m in self.milestones)

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
            "needs_docker": self.needs_docker,
            "tools": list(self.tools),
        }
