"""Was a Docker sandbox lost to its memory limit? (:class:`~hazmat.sandbox.limits.ResourceLimited`)

The box's tmpfs mounts are sized to fit its memory limit with room to spare
(:func:`~hazmat.sandbox.docker.config.tmpfs_sizes`) and the agent's commands run at
``oom_score_adj`` 1000, so the OOM killer normally takes the agent's processes and the
supervisor lives on. When the supervisor goes anyway (the agent lowered its own score
and spread its memory over small processes), the box's init exits and every later call
fails: the daemon's ``State.OOMKilled``, or an ``oom`` event of the box since it
started, says the box's own processes filled its memory.

While the box lives, :meth:`DockerLimits.pressure` reads its cgroup's counters (OOM kills,
forks refused at the pids limit) when the daemon runs on this host: the box's init is a
process here whose cgroup path names the box (a remote daemon's is not: nothing is said).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.channel import Channel
from hazmat.sandbox.limits import Exhausted, cgroup_hits

__all__ = ["DockerLimits", "box_cgroups", "box_exhausted"]

CGROUP_FS = Path("/sys/fs/cgroup")

log = structlog.get_logger("hazmat.sandbox.docker")


def _started(state: dict[str, Any]) -> float | None:
    text = str(state.get("StartedAt") or "")[:19]
    with contextlib.suppress(ValueError):
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return None


def box_exhausted(api: Any, cid: str, memory_mb: int, channel_closed: bool) -> Exhausted | None:
    """The box's lost memory, from the daemon (see the module docstring); None while the
    box runs with its channel open, or when nothing says the memory ran out. Never raises."""
    try:
        state = dict(api.inspect_container(cid).get("State") or {})
    except Exception as exc:
        log.warning("box_state_unknown", box=cid[:12], error=str(exc))
        return None
    if state.get("Running") and not state.get("Paused") and not channel_closed:
        return None
    if state.get("OOMKilled"):
        return Exhausted("memory", memory_mb, f"State.OOMKilled, exit code {state.get('ExitCode')}")
    since = _started(state)
    if since is None:
        return None
    try:
        events = api.events(
            since=int(since) - 1,
            until=int(time.time()) + 1,
            filters={"container": cid, "event": "oom"},
            decode=True,
        )
        ooms = sum(1 for _ in events)
    except Exception as exc:
        log.warning("box_events_unknown", box=cid[:12], error=str(exc))
        return None
    if ooms:
        return Exhausted("memory", memory_mb, f"{ooms} oom event(s) of the box")
    return None


def box_cgroups(api: Any, cid: str) -> list[Path]:
    """The box's memory and pids cgroup folders on this host (v2: one folder; v1: one
    per controller), or none when the daemon is elsewhere or the box is gone. Never
    raises."""
    try:
        pid = int(api.inspect_container(cid)["State"]["Pid"])
        text = Path(f"/proc/{pid}/cgroup").read_text() if pid > 0 else ""
    except Exception:
        return []
    folders: list[Path] = []
    for line in text.splitlines():
        _, ctrls, rel = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if cid not in rel:  # not the box's: another host's pid, or the root cgroup
            continue
        if ctrls == "":
            folders.append(CGROUP_FS / rel.lstrip("/"))
        folders += [
            CGROUP_FS / c / rel.lstrip("/") for c in ctrls.split(",") if c in ("memory", "pids")
        ]
    return [f for f in folders if f.is_dir()]


class DockerLimits:
    """:meth:`exhausted` for :class:`~hazmat.sandbox.docker.sandbox.DockerSandbox`."""

    spec: SandboxSpec
    _api: Any
    _box: str | None
    _box_channel: Channel | None
    _stopped: bool

    async def exhausted(self) -> Exhausted | None:
        """The memory, when the box is gone or its channel closed and the daemon says its
        processes ran out of memory (see the module docstring). Never raises."""
        if self._api is None or self._box is None or self._stopped:
            return None
        closed = self._box_channel is None or self._box_channel.closed
        return await asyncio.to_thread(
            box_exhausted, self._api, self._box, self.spec.limits.memory_mb, closed
        )

    async def pressure(self) -> list[Exhausted]:
        """Every limit the box's processes hit so far, from its cgroup's counters (see
        the module docstring); empty when the daemon is not on this host. Never raises."""
        if self._api is None or self._box is None or self._stopped:
            return []
        folders = await asyncio.to_thread(box_cgroups, self._api, self._box)
        return cgroup_hits(folders, self.spec)
