"""Sandboxes lost to a resource the agent exhausted, told apart from harness faults.

A sandbox whose supervisor the kernel killed because the agent's own processes filled
its memory (or its process table) is gone like one a bug broke, but the cause is the
agent's behaviour: the episode ends ``limit`` with the resource named, not ``error``.
Backends that can tell declare it by implementing :class:`ResourceLimited`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Exhausted", "ResourceLimited"]


@dataclass(frozen=True)
class Exhausted:
    """A resource the sandbox's own processes ran out of, and the kernel's evidence."""

    resource: str
    """``memory`` or ``pids``."""
    limit: int | None
    """The limit, in the spec's unit (MiB of memory, processes)."""
    evidence: str
    """What said so (``State.OOMKilled``, ``memory.events oom_kill 3``, ...)."""


@runtime_checkable
class ResourceLimited(Protocol):
    """A backend that can tell whether its sandbox was lost to one of its limits."""

    async def exhausted(self) -> Exhausted | None:
        """The resource, when the sandbox is no longer usable (its supervisor is gone)
        and a limit of its own was hit; None while it runs, or when it was lost to
        anything else. Call before ``stop()``. Never raises."""
        ...
