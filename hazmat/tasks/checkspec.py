"""The check models of a milestone: what ``check:`` in task.yaml becomes.

A check is a mapping with exactly one key naming its type::

    {sandbox: {command: "test -f /tmp/x", service: web, stdout_regex: "ok"}}   # or {sandbox: "cmd"}
    {sandbox: {command: "python3 /root/score.py", score: true, stdin: submission}}
    {file: {path: /tmp/x, exists: true | contains: "..." | regex: "...", service: web}}
    {trace: {tool: bash, command_regex: "find .*-perm", args: {path: "^/etc"}, exit_code: 0}}
    {output: {regex: "HZM\\{", tool: bash}}   {output: {contains: "1|\\/|"}}  # or {output: "regex"}
    {submission: {equals: "..." | contains: "..." | regex: "..."}}          # or {submission: "..."}
    {answer: QUESTION_ID}                                                    # a question's answer
    {python: {function: name}}                                               # or {python: name}
    {all: [check, ...]}   {any: [check, ...]}

``trace``, ``output``, ``submission`` and ``answer`` are *cheap* (they read the trace
only); ``sandbox``, ``file`` and ``python`` are *expensive* (they run in the sandbox or
run task code). A ``sandbox`` check with ``score: true`` and a ``python`` check may give
a number in [0, 1] instead of pass/fail (a scored milestone).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hazmat.tasks.placeholders import neutralize

__all__ = [
    "CHEAP_CHECKS",
    "CHECK_TYPES",
    "AnswerCheck",
    "Check",
    "FileCheck",
    "OutputCheck",
    "PythonCheck",
    "SandboxCheck",
    "SubmissionCheck",
    "TraceCheck",
]

CHECK_TYPES = (
    "sandbox",
    "file",
    "trace",
    "output",
    "submission",
    "answer",
    "python",
    "all",
    "any",
)
CHEAP_CHECKS = frozenset({"trace", "output", "submission", "answer"})

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def regex_field(value: str | None) -> str | None:
    """Validate a regex field (placeholders count as plain words). Raises ValueError."""
    if value is not None:
        try:
            re.compile(neutralize(value))
        except re.error as exc:
            raise ValueError(f"bad regex {value!r}: {exc}") from None
    return value


def _one_of(model: BaseModel, names: tuple[str, ...], *, required: bool) -> list[str]:
    given = [k for k in names if getattr(model, k) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of {', '.join(names)} (got {', '.join(given)})")
    if required and not given:
        raise ValueError(f"give exactly one of {', '.join(names)}")
    return given


class SandboxCheck(_Frozen):
    """A command the scorer runs as root in the sandbox (or a service); passes on exit 0.

    With ``score: true`` the check is scored: the last non-empty line of stdout is a
    number in [0, 1] (or JSON ``{"score": x}``); anything else scores 0.
    """

    command: str
    service: str | None = None
    stdout_regex: str | None = None
    """When set, stdout must also match (``re.search``)."""
    timeout: float = Field(60.0, gt=0)
    score: bool = False
    """The check is scored: the last line of stdout is a number in [0, 1] (or `{"score": x}`)."""
    stdin: Literal["submission"] | None = None
    """``submission``: the episode's submission is written to the command's stdin."""

    _re = field_validator("stdout_regex")(regex_field)


class FileCheck(_Frozen):
    """A file in the sandbox (read by the scorer as root): exists / contains / regex."""

    path: str
    exists: bool | None = None
    contains: str | None = None
    regex: str | None = None
    service: str | None = None

    _re = field_validator("regex")(regex_field)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path must be absolute: {value!r}")
        return value

    @model_validator(mode="after")
    def _one(self) -> FileCheck:
        if not _one_of(self, ("exists", "contains", "regex"), required=False):
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

    _re = field_validator("command_regex")(regex_field)

    @field_validator("args")
    @classmethod
    def _args(cls, value: dict[str, str]) -> dict[str, str]:
        for v in value.values():
            regex_field(v)
        return value


class OutputCheck(_Frozen):
    """Some tool output (stdout+stderr text, in full) matched ``regex`` or holds
    ``contains`` (a literal: no escaping needed for flags like ``1|\\/|``)."""

    regex: str | None = None
    contains: str | None = None
    """A literal the output must contain (no escaping)."""
    tool: str | None = None

    _re = field_validator("regex")(regex_field)

    @model_validator(mode="after")
    def _one(self) -> OutputCheck:
        _one_of(self, ("regex", "contains"), required=True)
        return self


class SubmissionCheck(_Frozen):
    """The submitted answer equals / contains / matches (whitespace stripped by default)."""

    equals: str | None = None
    contains: str | None = None
    regex: str | None = None
    ignore_case: bool = False
    strip: bool = True

    _re = field_validator("regex")(regex_field)

    @model_validator(mode="after")
    def _one(self) -> SubmissionCheck:
        _one_of(self, ("equals", "contains", "regex"), required=True)
        return self


class AnswerCheck(_Frozen):
    """The agent answered question ``question`` (``questions:``) correctly, with the
    ``answer`` tool; the question says how answers are compared."""

    question: str = Field(pattern=_SLUG)
    """The question's id."""


class PythonCheck(_Frozen):
    """``function(ctx) -> bool | float`` (sync or async) from the task folder's ``checks.py``.

    A number in [0, 1] makes the milestone scored.
    """

    function: str = Field(pattern=_IDENT)


_SHORTHAND: dict[str, str] = {
    "sandbox": "command",
    "file": "path",
    "trace": "tool",
    "output": "regex",
    "submission": "equals",
    "answer": "question",
    "python": "function",
}


class Check(_Frozen):
    """A check: a mapping with exactly one key naming its type (see the module doc)."""

    sandbox: SandboxCheck | None = None
    file: FileCheck | None = None
    trace: TraceCheck | None = None
    output: OutputCheck | None = None
    submission: SubmissionCheck | None = None
    answer: AnswerCheck | None = None
    """The agent answered a question right."""
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

    @property
    def may_score(self) -> bool:
        """True when the check may give a number rather than pass/fail (scored sandbox
        checks and python checks)."""
        return any(
            (c.sandbox is not None and c.sandbox.score) or c.python is not None for c in self.walk()
        )

    def walk(self) -> list[Check]:
        """This check and every check nested in it, depth first."""
        out: list[Check] = [self]
        for child in self.children:
            out.extend(child.walk())
        return out
