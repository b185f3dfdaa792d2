"""Evaluating milestone checks against one episode.

The loop supplies a :class:`CheckContext`: the (rendered) task, the sandbox, the
trace so far (one :class:`TraceStep` per tool call), the submission and the
episode's secrets. Checks never go through the agent's shell session: ``sandbox``
and ``file`` checks run fresh processes as root via ``Sandbox.exec``, which the
agent can neither see in its trace nor influence.

``evaluate_check(check, ctx, cheap_only=True)`` evaluates only the cheap parts
(trace, output, submission, answer) and returns ``None`` where an expensive part would
decide the result (three-valued ``all``/``any``). A scored check gives a number in
[0, 1]; ``all`` takes the lowest of its parts, ``any`` the highest.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from hazmat.errors import HazmatError, SpecError
from hazmat.sandbox.base import ExecResult, Sandbox
from hazmat.tasks.checkspec import (
    AnswerCheck,
    Check,
    FileCheck,
    OutputCheck,
    SandboxCheck,
    SubmissionCheck,
    TraceCheck,
)
from hazmat.tasks.questions import answer_matches, first_answers
from hazmat.tasks.spec import Task
from hazmat.tasks.users import ModelFactory

__all__ = [
    "CheckContext",
    "CheckResult",
    "ScorerSandbox",
    "TraceStep",
    "evaluate_check",
    "load_checks_module",
    "parse_score",
]

log = structlog.get_logger()


class TraceStep(BaseModel):
    """One tool call of the episode, as the scorer sees it.

    ``output`` is the full output text (stdout then stderr for commands; the file
    content for ``read_file``; the tool's message otherwise), never the model's
    truncated view. ``executed`` is False for calls that never ran (refused by the
    policy, malformed); trace and output checks skip them by default.
    """

    model_config = ConfigDict(frozen=True)

    step: int = Field(ge=1)
    """1-based step number in the episode."""
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    exit_code: int | None = None
    output: str = ""
    executed: bool = True
    time: float = 0.0
    """Seconds since the episode started, when the step ended."""
    data: dict[str, Any] = Field(default_factory=dict)
    """Facts the tool recorded (e.g. the ``answer`` tool: which question, accepted)."""

    @property
    def command_text(self) -> str:
        """The command of a bash call, the code of a python call, else ``""``."""
        for key in ("command", "code"):
            value = self.args.get(key)
            if isinstance(value, str):
                return value
        return ""


class ScorerSandbox:
    """The scorer's read-only-minded view of a sandbox: root commands and file reads.

    Commands run as root in fresh processes (never the agent's shell session).
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    async def exec(
        self,
        cmd: str | list[str],
        *,
        service: str | None = None,
        timeout: float = 60.0,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``cmd`` as root (string: via ``/bin/sh -c``; list: argv)."""
        return await self._sandbox.exec(
            cmd, user="root", service=service, timeout=timeout, stdin=stdin
        )

    async def read_bytes(self, path: str, *, service: str | None = None) -> bytes | None:
        """The file's bytes read as root, or ``None`` when it does not exist / is unreadable."""
        result = await self.exec(["cat", "--", path], service=service)
        return result.stdout if result.ok else None

    async def read_text(self, path: str, *, service: str | None = None) -> str | None:
        """The file's text (UTF-8, invalid bytes replaced), or ``None`` when missing."""
        data = await self.read_bytes(path, service=service)
        return None if data is None else data.decode("utf-8", errors="replace")

    async def exists(self, path: str, *, service: str | None = None) -> bool:
        """True when ``path`` exists (as root sees it)."""
        return (await self.exec(["test", "-e", path], service=service)).ok


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may read. Frozen; ``trace`` is a tuple, ``secrets`` read-only.

    Python checks (``checks.py``) receive this object: ``ctx.sandbox`` is a
    :class:`ScorerSandbox` (or ``None`` when scoring without a sandbox).
    """

    task: Task
    trace: tuple[TraceStep, ...] = ()
    submission: str | None = None
    secrets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    sandbox: ScorerSandbox | None = None
    seed: int = 0
    make_model: ModelFactory | None = None
    """Makes a chat model from ``PROVIDER:MODEL`` (for judge checks); None: no judge."""

    @classmethod
    def make(
        cls,
        task: Task,
        *,
        trace: Sequence[TraceStep] = (),
        submission: str | None = None,
        secrets: Mapping[str, str] | None = None,
        sandbox: Sandbox | None = None,
        seed: int = 0,
        make_model: ModelFactory | None = None,
    ) -> CheckContext:
        """Build a context from loop state (copies the trace, wraps the sandbox)."""
        return cls(
            make_model=make_model,
            task=task,
            trace=tuple(trace),
            submission=submission,
            secrets=MappingProxyType(dict(secrets or {})),
            sandbox=ScorerSandbox(sandbox) if sandbox is not None else None,
            seed=seed,
        )

    @property
    def root(self) -> Path | None:
        """The task folder."""
        return self.task.root

    @property
    def steps(self) -> int:
        """Number of steps so far."""
        return len(self.trace)


# python checks ---------------------------------------------------------------

_MODULES: dict[tuple[str, int], ModuleType] = {}


def load_checks_module(path: Path) -> ModuleType:
    """Import a task's ``checks.py`` (or ``tools.py``) by path, cached until it changes.

    Raises:
        SpecError: the file is missing or fails to import.
    """
    path = path.resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise SpecError("no such file", file=str(path)) from None
    key = (str(path), mtime)
    if key in _MODULES:
        return _MODULES[key]
    name = "hazmat_task_" + hashlib.sha256(str(path).encode()).hexdigest()[:16] + "_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise SpecError("cannot import", file=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise SpecError(f"import failed: {exc.__class__.__name__}: {exc}", file=str(path)) from exc
    _MODULES[key] = module
    return module


def _python_function(task: Task, name: str) -> Callable[[CheckContext], Any]:
    if task.root is None:
        raise SpecError(f"python check {name!r}: the task has no folder")
    module = load_checks_module(task.root / "checks.py")
    fn = getattr(module, name, None)
    if not callable(fn):
        raise SpecError(f"function {name!r} is not defined", file=str(task.root / "checks.py"))
    return fn  # type: ignore[no-any-return]


# evaluation ----------------------------------------------------------------------

CheckResult = bool | float | None
"""Pass/fail, a score in [0, 1], or None (not decided without the expensive parts)."""


def _search(pattern: str, text: str, flags: int = 0) -> bool:
    return re.search(pattern, text, flags) is not None


def parse_score(text: str) -> float | None:
    """A score from a scorer's output: the last non-empty line, a number or JSON
    ``{"score": x}``, clamped to [0, 1]; None when there is none (or it is NaN)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1]
    value: Any = None
    try:
        value = json.loads(last)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return min(1.0, max(0.0, float(value)))


def _trace(check: TraceCheck, ctx: CheckContext) -> bool:
    for step in ctx.trace:
        if not step.executed and not check.include_blocked:
            continue
        if check.tool is not None and step.tool != check.tool:
            continue
        if check.exit_code is not None and step.exit_code != check.exit_code:
            continue
        if check.command_regex is not None and not _search(check.command_regex, step.command_text):
            continue
        if all(
            name in step.args and _search(rx, str(step.args[name]))
            for name, rx in check.args.items()
        ):
            return True
    return False


def _output(check: OutputCheck, ctx: CheckContext) -> bool:
    for step in ctx.trace:
        if not step.executed or (check.tool is not None and step.tool != check.tool):
            continue
        if check.contains is not None:
            if check.contains in step.output:
                return True
        elif check.regex is not None and _search(check.regex, step.output):
            return True
    return False


def _submission(check: SubmissionCheck, ctx: CheckContext) -> bool:
    if ctx.submission is None:
        return False
    got = ctx.submission.strip() if check.strip else ctx.submission
    if check.regex is not None:
        return _search(check.regex, got, re.IGNORECASE if check.ignore_case else 0)
    want = check.equals if check.equals is not None else check.contains
    assert want is not None
    if check.strip:
        want = want.strip()
    if check.ignore_case:
        got, want = got.casefold(), want.casefold()
    if check.equals is not None:
        return got == want
    return want in got


def _answer(check: AnswerCheck, ctx: CheckContext) -> bool:
    qs = ctx.task.questions
    q = qs.get(check.question) if qs is not None else None
    if qs is None or q is None:
        return False
    return any(answer_matches(a, q) for a in first_answers(ctx.trace, q.id, qs.attempts))


async def _sandbox(check: SandboxCheck, ctx: CheckContext, sb: ScorerSandbox) -> bool | float:
    stdin = (ctx.submission or "").encode() if check.stdin == "submission" else None
    result = await sb.exec(check.command, service=check.service, timeout=check.timeout, stdin=stdin)
    if check.score:
        if result.timed_out:
            return 0.0
        value = parse_score(result.stdout_text)
        return 0.0 if value is None else value
    if not result.ok:
        return False
    return check.stdout_regex is None or _search(check.stdout_regex, result.stdout_text)


async def _file(check: FileCheck, sb: ScorerSandbox) -> bool:
    if check.exists is not None:
        return await sb.exists(check.path, service=check.service) == check.exists
    text = await sb.read_text(check.path, service=check.service)
    if text is None:
        return False
    if check.contains is not None:
        return check.contains in text
    assert check.regex is not None
    return _search(check.regex, text)


async def _python(name: str, ctx: CheckContext) -> bool | float:
    fn = _python_function(ctx.task, name)
    result = fn(ctx)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, bool) or result is None:
        return bool(result)
    if isinstance(result, int | float):
        return 0.0 if math.isnan(result) else min(1.0, max(0.0, float(result)))
    return bool(result)


def _value(r: bool | float) -> float:
    return (1.0 if r else 0.0) if isinstance(r, bool) else float(r)


def _combine(kind: str, results: list[CheckResult]) -> CheckResult:
    known = [r for r in results if r is not None]
    scored = any(not isinstance(r, bool) for r in known)
    if kind == "all":
        if any(r is False or (not isinstance(r, bool) and r == 0.0) for r in known):
            return 0.0 if scored else False
        if len(known) < len(results):
            return None
        return min(_value(r) for r in known) if scored else True
    if any(r is True or (not isinstance(r, bool) and r == 1.0) for r in known):
        return 1.0 if scored else True
    if len(known) < len(results):
        return None
    return max((_value(r) for r in known), default=0.0) if scored else False


async def evaluate_check(
    check: Check,
    ctx: CheckContext,
    *,
    cheap_only: bool = False,
    errors: list[str] | None = None,
) -> CheckResult:
    """Evaluate ``check``: True/False, a score in [0, 1], or None ("not decided without
    expensive checks").

    With ``cheap_only`` the ``sandbox``, ``file`` and ``python`` parts are not run
    (they count as undecided). An expensive check with no sandbox in ``ctx`` is
    False. A ``python`` check that raises (other than a HazmatError) counts as
    False; the error text is appended to ``errors`` and logged.

    Raises:
        SandboxError: the sandbox broke while the scorer used it (a harness fault).
        SpecError: a python check's ``checks.py`` or function cannot be loaded.
    """
    kind = check.kind
    if kind in ("all", "any"):
        results = [
            await evaluate_check(c, ctx, cheap_only=cheap_only, errors=errors)
            for c in check.children
        ]
        return _combine(kind, results)
    if check.trace is not None:
        return _trace(check.trace, ctx)
    if check.output is not None:
        return _output(check.output, ctx)
    if check.submission is not None:
        return _submission(check.submission, ctx)
    if check.answer is not None:
        return _answer(check.answer, ctx)
    if cheap_only:
        return None
    if check.python is not None:
        try:
            return await _python(check.python.function, ctx)
        except HazmatError:
            raise
        except Exception as exc:
            text = f"python check {check.python.function}: {exc.__class__.__name__}: {exc}"
            log.warning("check_error", task=ctx.task.id, error=text)
            if errors is not None:
                errors.append(text)
            return False
    if ctx.sandbox is None:
        return False
    if check.sandbox is not None:
        return await _sandbox(check.sandbox, ctx, ctx.sandbox)
    assert check.file is not None
    return await _file(check.file, ctx.sandbox)
