"""The built-in tools: ``bash``, ``python``, ``read_file``, ``write_file``, ``submit``."""

from __future__ import annotations

from typing import Any

from hazmat.errors import FileTooLargeError, ToolError
from hazmat.sandbox.base import Sandbox
from hazmat.tools.base import Tool, ToolOutput, command_view, model_view

__all__ = ["BUILTIN_TOOLS", "BashTool", "PythonTool", "ReadFileTool", "SubmitTool", "WriteFileTool"]


def _timeout(args: dict[str, Any], default: float | None) -> float | None:
    value = args.get("timeout")
    if value is None:
        return default
    if value <= 0:
        raise ToolError("timeout must be positive")
    return float(value) if default is None else min(float(value), default)


class BashTool(Tool):
    """Runs a command in the agent's persistent bash session."""

    name = "bash"
    description = (
        "Run a bash command in your persistent shell session. The working directory, "
        "variables and functions carry over between calls. Returns stdout, stderr and "
        "the exit code."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "the bash command to run"},
            "timeout": {"type": "number", "description": "seconds before it is killed"},
        },
        "required": ["command"],
    }

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        result = await sandbox.shell(args["command"], timeout=_timeout(args, self.timeout))
        text, cut = command_view(result, self.view_bytes)
        return ToolOutput(tool=self.name, text=text, result=result, cut_bytes=cut)


class PythonTool(Tool):
    """Runs a Python script with python3 in the sandbox."""

    name = "python"
    description = (
        "Run a Python 3 script in the sandbox (a fresh interpreter each call; "
        "print what you want to see). Returns stdout, stderr and the exit code."
    )
    parameters = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "the Python source to run"},
            "timeout": {"type": "number", "description": "seconds before it is killed"},
        },
        "required": ["code"],
    }

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        result = await sandbox.exec(
            ["python3", "-"], stdin=args["code"].encode(), timeout=_timeout(args, self.timeout)
        )
        text, cut = command_view(result, self.view_bytes)
        return ToolOutput(tool=self.name, text=text, result=result, cut_bytes=cut)


class ReadFileTool(Tool):
    """Reads a text file from the sandbox."""

    name = "read_file"
    description = "Read a file in the sandbox and return its contents as text."
    parameters = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "absolute or workspace path"}},
        "required": ["path"],
    }

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        path = _abspath(sandbox, args["path"])
        try:
            data = await sandbox.read_file(path)
        except (
            FileNotFoundError,
            PermissionError,
            IsADirectoryError,
            OSError,
            FileTooLargeError,
        ) as exc:
            raise ToolError(f"read_file {path}: {exc}") from None
        text = data.decode("utf-8", errors="replace")
        view, cut = model_view(text, self.view_bytes)
        return ToolOutput(
            tool=self.name,
            text=view,
            cut_bytes=cut,
            data={"path": path, "size": len(data), "content": text},
        )


class WriteFileTool(Tool):
    """Writes a text file in the sandbox as the agent's user."""

    name = "write_file"
    description = "Write text to a file in the sandbox, creating parent folders."
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "absolute or workspace path"},
            "content": {"type": "string", "description": "the text to write"},
        },
        "required": ["path", "content"],
    }

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        path = _abspath(sandbox, args["path"])
        data = args["content"].encode()
        try:
            await sandbox.write_file(path, data)
        except (PermissionError, IsADirectoryError, OSError, FileTooLargeError) as exc:
            raise ToolError(f"write_file {path}: {exc}") from None
        return ToolOutput(
            tool=self.name,
            text=f"wrote {len(data)} bytes to {path}",
            data={"path": path, "size": len(data)},
        )


class SubmitTool(Tool):
    """Submits the final answer; the episode ends."""

    name = "submit"
    description = "Submit your final answer. The episode ends when you call this."
    parameters = {
        "type": "object",
        "properties": {"answer": {"type": "string", "description": "your final answer"}},
        "required": ["answer"],
    }

    async def _run(self, sandbox: Sandbox, args: dict[str, Any]) -> ToolOutput:
        return ToolOutput(tool=self.name, text="answer submitted", submission=args["answer"])


def _abspath(sandbox: Sandbox, path: str) -> str:
    if not path:
        raise ToolError("path must not be empty")
    if path.startswith("/"):
        return path
    if path.startswith("~/"):
        return sandbox.spec.workdir.rstrip("/") + path[1:]
    return sandbox.spec.workdir.rstrip("/") + "/" + path


BUILTIN_TOOLS: dict[str, type[Tool]] = {
    t.name: t for t in (BashTool, PythonTool, ReadFileTool, WriteFileTool, SubmitTool)
}
"""The built-in tools by name."""
