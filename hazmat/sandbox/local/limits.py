"""Was a local sandbox lost to its cgroup limits? (:class:`~hazmat.sandbox.limits.ResourceLimited`)

A local sandbox's processes, its supervisor included, share its cgroups (as root; see
:mod:`.cgroups`). When the supervisor's channel closes and the kernel's counters say
the memory cgroup OOM-killed a process (``memory.oom_control``/``memory.events``
``oom_kill``) or the pids cgroup refused a fork (``pids.events`` ``max``), the sandbox
was lost to the agent's own use of that resource.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.channel import Channel
from hazmat.sandbox.limits import Exhausted

__all__ = ["CgroupLimits", "cgroup_exhausted"]


def _counter(path: Path, key: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def cgroup_exhausted(cgroups: list[Path], spec: SandboxSpec) -> Exhausted | None:
    """The resource the sandbox's cgroups say ran out (memory first), or None."""
    for folder in cgroups:
        kills = _counter(folder / "memory.oom_control", "oom_kill") or _counter(
            folder / "memory.events", "oom_kill"
        )
        if kills:
            return Exhausted("memory", spec.limits.memory_mb, f"cgroup oom_kill {kills}")
    for folder in cgroups:
        refused = _counter(folder / "pids.events", "max")
        if refused:
            return Exhausted("pids", spec.limits.pids, f"cgroup pids.events max {refused}")
    return None


class CgroupLimits:
    """:meth:`exhausted` for :class:`~hazmat.sandbox.local.sandbox.LocalSandbox`."""

    spec: SandboxSpec
    _cgroups: list[Path]
    _channel: Channel | None
    _stopped: bool

    async def exhausted(self) -> Exhausted | None:
        """The resource, when the supervisor's channel closed and the sandbox's cgroups
        say one ran out (see the module docstring). Never raises."""
        if self._stopped or not self._cgroups:
            return None
        if self._channel is not None and not self._channel.closed:
            return None
        return cgroup_exhausted(self._cgroups, self.spec)
