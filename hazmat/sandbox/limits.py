"""Sandboxes lost to a resource the agent exhausted, told apart from harness faults.

A sandbox whose supervisor the kernel killed because the agent's own processes filled
its memory (or its process table) is gone like one a bug broke, but the cause is the
agent's behaviour: the episode ends ``limit`` with the resource named, not ``error``.
Backends that can tell declare it by implementing :class:`ResourceLimited`; its
:meth:`~ResourceLimited.pressure` also tells the limits an episode ran into while the
sandbox lived on (a fork bomb the pids limit held), which the runner records as a note.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hazmat.sandbox.base import SandboxSpec

__all__ = ["Exhausted", "ResourceLimited", "cgroup_hits"]


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

    async def pressure(self) -> list[Exhausted]:
        """Every limit the sandbox's processes ran into so far, lost or not: the kernel
        refused them memory (OOM kills) or processes (forks refused at the pids limit).
        Empty when none did or the backend cannot tell. Call before ``stop()``. Never
        raises."""
        ...


def _counter(path: Path, key: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def cgroup_hits(cgroups: list[Path], spec: SandboxSpec) -> list[Exhausted]:
    """Every limit the cgroups' counters say was hit (memory first), with the counter."""
    hits: list[Exhausted] = []
    for folder in cgroups:
        kills = _counter(folder / "memory.oom_control", "oom_kill") or _counter(
            folder / "memory.events", "oom_kill"
        )
        if kills:
            hits.append(Exhausted("memory", spec.limits.memory_mb, f"cgroup oom_kill {kills}"))
            break
    for folder in cgroups:
        refused = _counter(folder / "pids.events", "max")
        if refused:
            hits.append(Exhausted("pids", spec.limits.pids, f"cgroup pids.events max {refused}"))
            break
    return hits
