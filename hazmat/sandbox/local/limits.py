"""Was a local sandbox lost to its cgroup limits? (:class:`~hazmat.sandbox.limits.ResourceLimited`)

A local sandbox's processes, its supervisor included, share its cgroups (as root; see
:mod:`.cgroups`). When the supervisor's channel closes and the kernel's counters say
the memory cgroup OOM-killed a process (``memory.oom_control``/``memory.events``
``oom_kill``) or the pids cgroup refused a fork (``pids.events`` ``max``), the sandbox
was lost to the agent's own use of that resource.
"""

from __future__ import annotations

from pathlib import Path

from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.channel import Channel
from hazmat.sandbox.limits import Exhausted, cgroup_hits

__all__ = ["CgroupLimits", "cgroup_exhausted"]


def cgroup_exhausted(cgroups: list[Path], spec: SandboxSpec) -> Exhausted | None:
    """The resource the sandbox's cgroups say ran out (memory first), or None."""
    hits = cgroup_hits(cgroups, spec)
    return hits[0] if hits else None


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

    async def pressure(self) -> list[Exhausted]:
        """Every limit the sandbox's cgroups say its processes hit so far. Never raises."""
        if self._stopped or not self._cgroups:
            return []
        return cgroup_hits(self._cgroups, self.spec)
