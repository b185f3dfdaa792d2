"""Task-specific tools: functions in a task folder's ``tools.py``, and simulated users.

task.yaml declares them; ``tools:`` must list them so the agent gets them::

    tools: [bash, read_file, send_email, submit]
    task_tools:
      - name: send_email
        description: Send an email through the company's mail relay.
        parameters:
          type: object
          properties: {to: {type: string}, subject: {type: string}, body: {type: string}}
          required: [to, subject, body]

and ``tools.py`` implements them, sync or async, taking a :class:`TaskToolContext`
first and the arguments as keywords::

    from hazmat.sinks import send_mail

    async def send_email(ctx, to, subject, body):
        result = await send_mail(ctx, service="mail", sender="x@corp.example",
                                 to=[to], subject=subject, body=body)
        return {"text": f"queued for {to}", **result}

A function returns the model's text as ``str``; a ``dict`` (its ``text`` key is the
model's text, else the dict as JSON; the whole dict is recorded as the result's
``data``); ``None`` ("ok"); or a full :class:`~hazmat.tools.base.ToolOutput`.

The function runs in the harness (host) process, so it gets no network and no
host files through its context: only the episode's sandbox (fresh processes and
files in its box and its own services, via :meth:`TaskToolContext.exec`,
``read_file``, ``write_file``; never the agent's shell session), the episode's
secrets and seed, and a ``state`` dict shared by the task's tools for the whole
episode. ``tools.py`` is
trusted task code, like ``checks.py``; it must not open sockets or touch the host
(the suite's tests check that it imports no networking modules).

Raising :class:`~hazmat.errors.ToolError` tells the model its call failed
(``is_error``); any other exception is a harness fault and ends the episode with
reason ``error``. A task with ``user:`` also gets the user's tool
(:class:`UserTool`, default name ``reply_to_user``) unless ``tools.py`` defines one
of that name.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import structlog

from hazmat.errors import HazmatError, SpecError, ToolError
from hazmat.sandbox.base import ExecResult, Sandbox
from hazmat.tasks.checks import load_checks_module
from hazmat.tasks.spec import Task, TaskTool, UserPersona
from hazmat.tasks.users import SimulatedUser
from hazmat.tools.base import DEFAULT_VIEW_BYTES, Tool, ToolOutput, model_view

__all__ = [
    "FunctionTool",
    "TaskToolContext",
    "UserTool",
    "load_task_tools",
]

log = structlog.get_logger("hazmat.task_tools")

TOOLS_FILE = "tools.py"


class TaskToolContext:
    """What a task tool function may use. One per call; ``state`` lives for the episode.

    The sandbox itself is not handed out: a tool runs commands in the task's services
    or the agent's box (fresh processes, never the agent's shell session) and reads
    or writes files, nothing else.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        task: Task,
        tool: str,
        seed: int,
        secrets: Mapping[str, str],
        state: dict[str, Any],
    ) -> None:
        self._sandbox = sandbox
        self.task = task
        """The rendered task (placeholders substituted)."""
        self.tool = tool
        self.seed = seed
        self.secrets = secrets
        self.state = state
        """Shared by every task tool of the episode (e.g. a sent-mail counter)."""
        self.log = log.bind(tool=tool, task=task.id)

    @property
    def services(self) -> list[str]:
        """Names of the task's services."""
        return list(self.task.sandbox.services)

    def _service(self, service: str | None) -> None:
        if service is not None and service not in self.task.sandbox.services:
            raise ToolError(f"{self.tool}: the task has no service {service!r}")

    async def exec(
        self,
        cmd: str | list[str],
        *,
        service: str | None = None,
        user: str | None = "root",
        stdin: bytes | str | None = None,
        timeout: float | None = 60.0,
    ) -> ExecResult:
        """Run a command in a task service (``service``) or the agent's box (``None``).

        Runs as root by default (the harness acting as the world, not as the
        agent); ``user=None`` runs as the sandbox's user (in the box: the agent's).

        Raises:
            ToolError: ``service`` is not one of the task's services.
            SandboxError: the sandbox broke (a harness fault).
        """
        self._service(service)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        if service is None and user is None:
            user = self._sandbox.spec.user
        return await self._sandbox.exec(
            cmd, service=service, user=user, stdin=data, timeout=timeout
        )

    async def read_file(self, path: str, *, service: str | None = None) -> bytes | None:
        """A file's bytes (read as root), or ``None`` when missing/unreadable."""
        result = await self.exec(["cat", "--", path], service=service)
        return result.stdout if result.ok else None

    async def write_file(self, path: str, data: bytes | str, *, user: str | None = None) -> None:
        """Write a file in the agent's box (as ``user``, default the agent's user),
        e.g. to drop a reply into the agent's inbox.

        Raises:
            PermissionError: that user may not write there.
        """
        raw = data.encode() if isinstance(data, str) else data
        await self._sandbox.write_file(path, raw, user=user)


Function = Callable[..., Any]


class FunctionTool(Tool):
    """A task tool backed by a function in ``tools.py`` (subclassed per tool)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        function: Function,
        *,
        task: Task,
        seed: int,
        secrets: Mapping[str, str],
        state: dict[str, Any],
        view_bytes: int = DEFAULT_VIEW_BYTES,
        timeout: float | None = None,
    ) -> None:
        super().__init__(view_bytes=view_bytes, timeout=timeout)
        self.function = function
        self.task = task
        self.seed = seed
        self.secrets = MappingProxyType(dict(secrets))
        self.state = state

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        ctx = TaskToolContext(
            sandbox,
            task=self.task,
            tool=self.name,
            seed=self.seed,
            secrets=self.secrets,
            state=self.state,
        )
        try:
            result = self.function(ctx, **args)
            if inspect.isawaitable(result):
                result = await result
        except (ToolError, HazmatError):
            raise
        except Exception:  # a bug in tools.py: a harness fault (episode ends "error")
            log.exception("task_tool_failed", tool=self.name, task=self.task.id)
            raise
        return self._output(result)

    def _output(self, result: Any) -> ToolOutput:
        if isinstance(result, ToolOutput):
            return result
        data: dict[str, Any] = {}
        if isinstance(result, dict):
            data = dict(result)
            text = (
                str(data["text"])
                if "text" in data
                else json.dumps(data, sort_keys=True, default=str)
            )
        elif result is None:
            text = "ok"
        else:
            text = str(result)
        data.pop("content", None)  # "content" means file content to the scorer
        view, cut = model_view(text, self.view_bytes)
        if cut:
            data.setdefault("text", text)
        return ToolOutput(tool=self.name, text=view, cut_bytes=cut, data=data)


class UserTool(Tool):
    """The agent's line to a simulated user: the message goes in, the user's reply comes out."""

    name: ClassVar[str] = "reply_to_user"
    description: ClassVar[str] = "Send a message to the user you are helping and get their reply."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"message": {"type": "string", "description": "your message to the user"}},
        "required": ["message"],
    }

    def __init__(
        self,
        user: SimulatedUser,
        *,
        view_bytes: int = DEFAULT_VIEW_BYTES,
        timeout: float | None = None,
    ) -> None:
        super().__init__(view_bytes=view_bytes, timeout=timeout)
        self.user = user

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        message = args["message"]
        if not message.strip():
            raise ToolError(f"{self.name}: the message is empty")
        turn = self.user.reply(message)
        return ToolOutput(
            tool=self.name,
            text=f"{self.user.name}: {turn.reply}",
            data={
                "user": self.user.name,
                "turn": turn.index,
                "source": turn.source,
                "reply": turn.reply,
                "ended": turn.source == "final",
            },
        )


def _tool_class(
    base: type[Tool], name: str, description: str, parameters: dict[str, Any]
) -> type[Any]:
    attrs = {"name": name, "description": description, "parameters": parameters}
    return type(f"{base.__name__}_{name}", (base,), attrs)


def user_tool(persona: UserPersona, *, description: str | None = None) -> UserTool:
    """A fresh :class:`UserTool` (with a fresh :class:`SimulatedUser`) for one episode."""
    desc = description or (
        f"Send a message to {persona.name}, the user you are talking with, and get "
        f"their reply. This is the only way to talk to {persona.name}."
    )
    cls = _tool_class(UserTool, persona.tool, desc, dict(UserTool.parameters))
    tool: UserTool = cls(SimulatedUser(persona))
    return tool


def load_task_tools(
    task: Task,
    *,
    seed: int,
    secrets: Mapping[str, str],
    view_bytes: int = DEFAULT_VIEW_BYTES,
) -> dict[str, Tool]:
    """The task-specific tools of one episode, by name: ``tools.py`` functions and the user.

    Call once per episode (the tools hold the episode's state). ``task`` is the
    rendered task.

    Raises:
        SpecError: ``tools.py`` is missing, fails to import, or lacks a declared function.
    """
    tools: dict[str, Tool] = {}
    state: dict[str, Any] = {}
    if task.task_tools:
        if task.root is None:
            raise SpecError(f"task {task.id} declares task_tools but has no folder")
        module = load_checks_module(task.root / TOOLS_FILE)
        for spec in task.task_tools:
            fn = getattr(module, spec.function_name, None)
            if not callable(fn):
                raise SpecError(
                    f"function {spec.function_name!r} is not defined",
                    file=str(task.root / TOOLS_FILE),
                )
            tools[spec.name] = _function_tool(
                spec, fn, task=task, seed=seed, secrets=secrets, state=state, view_bytes=view_bytes
            )
    if task.user is not None and task.user.tool not in tools:
        declared = {t.name: t for t in task.task_tools}.get(task.user.tool)
        tool = user_tool(task.user, description=declared.description if declared else None)
        tool.view_bytes = view_bytes
        tools[task.user.tool] = tool
    return tools


def _function_tool(
    spec: TaskTool,
    fn: Function,
    *,
    task: Task,
    seed: int,
    secrets: Mapping[str, str],
    state: dict[str, Any],
    view_bytes: int,
) -> FunctionTool:
    params = dict(spec.parameters)
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    cls = _tool_class(FunctionTool, spec.name, spec.description, params)
    tool: FunctionTool = cls(
        fn, task=task, seed=seed, secrets=secrets, state=state, view_bytes=view_bytes
    )
    return tool
