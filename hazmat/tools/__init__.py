"""Agent-facing tools bound to one sandbox."""

from __future__ import annotations

from hazmat.errors import ConfigError
from hazmat.tools.base import DEFAULT_VIEW_BYTES, Tool, ToolOutput, model_view, validate_args
from hazmat.tools.builtin import BUILTIN_TOOLS

__all__ = [
    "BUILTIN_TOOLS",
    "DEFAULT_VIEW_BYTES",
    "Tool",
    "ToolOutput",
    "make_tools",
    "model_view",
    "validate_args",
]


def make_tools(
    names: list[str],
    *,
    extra: dict[str, Tool] | None = None,
    view_bytes: int = DEFAULT_VIEW_BYTES,
    timeout: float | None = None,
) -> dict[str, Tool]:
    """Instantiate the named tools (built-in ones, or ``extra`` task tools).

    Raises:
        ConfigError: a name is neither built in nor in ``extra``.
    """
    tools: dict[str, Tool] = {}
    for name in names:
        if extra and name in extra:
            tools[name] = extra[name]
        elif name in BUILTIN_TOOLS:
            tools[name] = BUILTIN_TOOLS[name](view_bytes=view_bytes, timeout=timeout)
        else:
            known = sorted(BUILTIN_TOOLS) + sorted(extra or {})
            raise ConfigError(f"unknown tool {name!r}", hint=f"known tools: {', '.join(known)}")
    return tools
