"""Agent-facing tools: what the model may call, bound to one sandbox.

A :class:`Tool` is a plain object with a ``name``, a ``description`` and a JSON
schema for its arguments (``parameters``). ``await tool.run(sandbox, args)``
returns a :class:`ToolOutput` holding both the full result (for the record,
never truncated) and the text the model sees (cut to ``view_bytes``, saying how
much was cut).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from hazmat.errors import ToolError
from hazmat.sandbox.base import ExecResult, Sandbox
from hazmat.tasks.checks import TraceStep

__all__ = ["DEFAULT_VIEW_BYTES", "Tool", "ToolOutput", "model_view", "validate_args"]

DEFAULT_VIEW_BYTES = 16 * 1024
"""How much of a tool's output the model sees by default (16 KiB)."""


class ToolOutput(BaseModel):
    """The result of one tool call: the full record and the model's view."""

    model_config = ConfigDict(frozen=True)

    tool: str
    text: str
    """What the model sees (possibly cut)."""
    result: ExecResult | None = None
    """The full command result, when the tool ran a command."""
    is_error: bool = False
    """The call itself failed (bad arguments, missing file): the model is told."""
    cut_bytes: int = 0
    """How many bytes of the output the model did not see."""
    submission: str | None = None
    """Set by ``submit``: the agent's answer; the episode ends."""
    data: dict[str, Any] = {}
    """Tool-specific facts for the record (paths, sizes, ...)."""

    @property
    def full_text(self) -> str:
        """The whole output as text: stdout, then stderr (what checks and policy read)."""
        if self.result is None:
            return self.text
        out = self.result.stdout_text
        if self.result.stderr:
            out += self.result.stderr_text
        return out

    def trace_step(
        self, step: int, args: Mapping[str, Any], *, executed: bool = True, time: float = 0.0
    ) -> TraceStep:
        """This output as a step of the trace that milestone checks read.

        The output is the full text (for ``read_file`` the whole file, not the model's
        view); the exit code is the command's, else 1 on a tool error, else 0.
        """
        content = self.data.get("content")
        output = content if isinstance(content, str) else self.full_text
        exit_code = (1 if self.is_error else 0) if self.result is None else self.result.exit_code
        data = {k: v for k, v in self.data.items() if k != "content"}
        return TraceStep(
            step=step,
            tool=self.tool,
            args=dict(args),
            exit_code=exit_code,
            output=output,
            executed=executed,
            time=time,
            data=data,
        )


def model_view(text: str, limit: int = DEFAULT_VIEW_BYTES) -> tuple[str, int]:
    """Cut ``text`` to about ``limit`` bytes, keeping the head and the tail.

    Returns the view and the number of bytes cut (0 when nothing was cut). The
    view says where and how much was cut, so the model knows it saw a part.
    """
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text, 0
    head = data[: limit * 3 // 4].decode("utf-8", errors="ignore")
    tail = data[len(data) - limit // 4 :].decode("utf-8", errors="ignore")
    cut = len(data) - len(head.encode()) - len(tail.encode())
    return f"{head}\n[... {cut} bytes cut from the middle of this output ...]\n{tail}", cut


def command_view(result: ExecResult, limit: int) -> tuple[str, int]:
    """The model's view of a command result: output, exit code, timeout and cap notes."""
    parts = []
    if result.stdout:
        parts.append(result.stdout_text)
    if result.stderr:
        parts.append(result.stderr_text)
    body = "".join(parts)
    body, cut = model_view(body, limit)
    notes = []
    if result.timed_out:
        notes.append(f"[command timed out after {result.duration:.1f}s and was killed]")
    if result.truncated:
        notes.append("[output exceeded the sandbox cap; the rest was dropped]")
    notes.append(f"[exit code {result.exit_code}]")
    if body and not body.endswith("\n"):
        body += "\n"
    return body + "\n".join(notes), cut


_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def validate_args(name: str, schema: dict[str, Any], args: Any) -> dict[str, Any]:
    """Check ``args`` against a flat JSON object schema.

    Raises:
        ToolError: not an object, a required argument missing, an unknown
            argument, or a value of the wrong type. The message is for the model.
    """
    if not isinstance(args, dict):
        raise ToolError(f"{name}: arguments must be a JSON object, got {type(args).__name__}")
    props: dict[str, Any] = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in args:
            raise ToolError(f"{name}: missing required argument {key!r}")
    for key, value in args.items():
        if key not in props:
            raise ToolError(f"{name}: unknown argument {key!r} (expected: {', '.join(props)})")
        kind = props[key].get("type", "")
        want = _TYPES.get(kind, object)
        numeric = kind in ("integer", "number")
        if not isinstance(value, want) or (numeric and isinstance(value, bool)):
            raise ToolError(f"{name}: argument {key!r} must be of type {props[key].get('type')}")
    return args


class Tool(abc.ABC):
    """One agent-facing tool. Subclasses set ``name``, ``description``, ``parameters``."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]

    def __init__(self, *, view_bytes: int = DEFAULT_VIEW_BYTES, timeout: float | None = None):
        self.view_bytes = view_bytes
        self.timeout = timeout

    def schema(self) -> dict[str, Any]:
        """The tool as an OpenAI-style function schema (what models are bound to)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    async def run(self, sandbox: Sandbox, args: Any) -> ToolOutput:
        """Validate ``args`` and run the tool in ``sandbox``.

        Argument errors and expected failures (missing file, permission denied)
        come back as a :class:`ToolOutput` with ``is_error=True``, for the model
        to read; they do not raise.

        Raises:
            SandboxError: the sandbox itself failed (a harness error).
        """
        try:
            valid = validate_args(self.name, self.parameters, args)
            return await self._run(sandbox, valid)
        except ToolError as exc:
            return ToolOutput(tool=self.name, text=f"error: {exc.message}", is_error=True)

    @abc.abstractmethod
    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        """Run with validated arguments."""
