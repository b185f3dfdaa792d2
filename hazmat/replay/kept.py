"""Sandboxes kept alive after a replay (``keep=True``): how to reach them, and how one is
let outlive this process (backends that are :class:`~hazmat.sandbox.Detachable`).
"""

from __future__ import annotations

from pydantic import BaseModel

from hazmat.errors import ReplayError
from hazmat.sandbox import Detachable, Sandbox, lacks

__all__ = ["KEPT_USER_LABEL", "KeptSandbox", "detach_sandbox"]


KEPT_USER_LABEL = "hazmat.user"
"""Label on a kept sandbox's containers naming the sandbox user (whose shell attach opens)."""


class KeptSandbox(BaseModel):
    """A sandbox left running by ``keep``: how to reach it."""

    backend: str
    container: str | None = None
    """Docker: the box container (running, detached from this process)."""
    attach: str | None = None
    """The command that opens a shell in it."""
    cleanup: str | None = None
    """The command that removes it."""


class _Keeper:
    def __init__(self) -> None:
        self.sandbox: Sandbox | None = None


async def detach_sandbox(sb: Sandbox) -> str:
    """Let a sandbox outlive this process (backends that are
    :class:`~hazmat.sandbox.Detachable`: Docker closes its sockets and keeps the
    containers; the box's supervisor keeps running). Returns the kept sandbox's handle
    (Docker: the box container id).

    Raises:
        ReplayError: the sandbox's backend cannot outlive this process.
    """
    if not isinstance(sb, Detachable):
        raise ReplayError(lacks(sb, Detachable))
    return await sb.detach()
