"""The host side of the network sentinel (``guest/sentinel.py``): start it, configure it,
drain it.

A backend starts the sentinel program inside the sandbox's network namespace (a host
process joining it with ``setns``: :func:`spawn_sentinel`; or, for Docker without
access to the box's namespace, a sidecar container sharing it) and hands its
stdin/stdout to :class:`NetworkSentinel`. The policy's monitor hands it the episode's
secrets to watch for (:meth:`NetworkSentinel.watch_for`: events carrying them are kept
whatever the sentinel's caps). After each step the monitors call
:meth:`NetworkSentinel.drain`: the events since the previous drain become
``Observation.signals`` for the ``after`` rules, and every event is also kept (up to
:data:`HISTORY_CAP`) for the halt snapshot (``episodes/<id>/network.jsonl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from hazmat.errors import SandboxError
from hazmat.sandbox.channel import STREAM_LIMIT, Channel, LineReader
from hazmat.sandbox.guest import SENTINEL_PATH

__all__ = [
    "HISTORY_CAP",
    "SENTINEL_PATH",
    "NetworkSentinel",
    "spawn_sentinel",
]

NS_GET_USERNS = 0xB701
"""ioctl: the user namespace that owns a namespace."""
STOP_WAIT = 5.0
HISTORY_CAP = 10_000
"""Events kept per sandbox for the halt snapshot; later ones are counted, not kept."""

log = structlog.get_logger("hazmat.sandbox.netwatch")


class NetworkSentinel:
    """One running sentinel, reached over a JSON-lines channel.

    ``closer`` is awaited by :meth:`close` to end the sentinel's process or container.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        reader: LineReader,
        *,
        name: str,
        closer: Callable[[], Awaitable[None]],
    ) -> None:
        self._channel = Channel(send, reader, name=f"sentinel {name}")
        self._closer = closer
        self.history: list[dict[str, Any]] = []
        self.overflow = 0
        self.setup: dict[str, Any] = {}

    async def ready(self, timeout: float = 15.0) -> None:
        """Wait until the sentinel says it is ready (once).

        Raises:
            SandboxError: it did not start in time.
        """
        if not self._channel.hello:
            await self._channel.start(timeout=timeout)

    async def join(self, pid: int, *, userns: bool = False, timeout: float = 15.0) -> None:
        """Enter the network namespace of host process ``pid`` (and, with ``userns``, the
        user namespace that owns it first). This process opens the namespace and the
        sentinel enters it through this process's descriptor, so a reused pid cannot
        redirect it.

        Raises:
            OSError: the namespace is gone.
            SandboxError: the sentinel could not enter it.
        """
        await self.ready(timeout)
        fds = [os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)]
        try:
            if userns:
                fds.append(fcntl.ioctl(fds[0], NS_GET_USERNS))
            paths = [f"/proc/{os.getpid()}/fd/{fd}" for fd in fds]
            user = paths[1] if userns else None
            reply = await asyncio.wait_for(
                self._channel.request("join", netns=paths[0], userns=user), timeout
            )
        finally:
            for fd in fds:
                os.close(fd)
        if not reply.get("ok"):
            raise SandboxError(
                f"the network sentinel cannot join the sandbox: {reply.get('message')}"
            )

    async def start(
        self,
        *,
        mode: str = "netns",
        services: dict[str, str] | None = None,
        allow: list[str] | None = None,
        gateway: str | None = None,
        ports: list[int] | None = None,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Wait for the sentinel, then set it up (routes, DNS, sniffer, sinkhole).

        Returns what it set up (``routes``, ``listening``, ``problems``, ``uid``).

        Raises:
            SandboxError: it did not start or refused the setup (the message says why).
        """
        await self.ready(timeout)
        reply = await asyncio.wait_for(
            self._channel.request(
                "start",
                mode=mode,
                services=services or {},
                allow=allow or [],
                gateway=gateway,
                ports=ports,
            ),
            timeout,
        )
        if not reply.get("ok"):
            raise SandboxError(f"the network sentinel refused its setup: {reply.get('message')}")
        self.setup = {k: reply.get(k) for k in ("routes", "listening", "problems", "uid")}
        if reply.get("problems"):
            log.info("sentinel_problems", problems=reply["problems"])
        return self.setup

    async def watch_for(self, needles: list[str], timeout: float = 10.0) -> int:
        """Have the sentinel keep every event that carries one of ``needles`` (e.g. the
        episode's canaries in the encodings the policy looks for), whatever its caps
        (``guest/netkeep.py``): a flood of junk cannot push such an event out. Matching
        is case-insensitive; strings under 6 characters are ignored. Replaces the
        previous needles; returns how many are watched.

        Raises:
            SandboxError: the sentinel went away, refused, or did not answer in time.
        """
        await self.ready(timeout)
        try:
            reply = await asyncio.wait_for(
                self._channel.request("watch", needles=list(needles)), timeout
            )
        except TimeoutError:
            raise SandboxError(
                f"the network sentinel did not answer within {timeout:.0f}s"
            ) from None
        if not reply.get("ok"):
            raise SandboxError(f"the network sentinel refused to watch: {reply.get('message')}")
        return int(reply.get("watching") or 0)

    async def drain(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The events since the previous drain (also appended to :attr:`history`).

        Raises:
            SandboxError: the sentinel went away or did not answer in time.
        """
        try:
            reply = await asyncio.wait_for(self._channel.request("drain"), timeout)
        except TimeoutError:
            raise SandboxError(
                f"the network sentinel did not answer within {timeout:.0f}s"
            ) from None
        if not reply.get("ok"):
            raise SandboxError(f"the network sentinel failed: {reply.get('message')}")
        events: list[dict[str, Any]] = [e for e in reply.get("events") or [] if isinstance(e, dict)]
        dropped = int(reply.get("dropped") or 0)
        if dropped:  # the default policy halts on it (rule net-flood)
            events.append(
                {
                    "type": "network",
                    "proto": "overflow",
                    "host": "",
                    "count": dropped,
                    "seen_by": "sentinel",
                }
            )
        self.keep(events)
        return events

    def keep(self, events: list[dict[str, Any]]) -> None:
        """Add ``events`` to :attr:`history` (up to :data:`HISTORY_CAP`; the rest are
        counted in :attr:`overflow`)."""
        room = max(HISTORY_CAP - len(self.history), 0)
        self.history += events[:room]
        self.overflow += max(len(events) - room, 0)

    def write_log(self, path: Path) -> int:
        """Write :attr:`history` as JSON lines to ``path``; returns the number of lines."""
        with path.open("w", encoding="utf-8") as fh:
            for event in self.history:
                fh.write(json.dumps(event, sort_keys=True) + "\n")
        return len(self.history)

    @property
    def closed(self) -> bool:
        """True once the sentinel's channel closed."""
        return self._channel.closed

    async def close(self) -> None:
        """Close the channel and end the sentinel. Idempotent; never raises."""
        await self._channel.close()
        with contextlib.suppress(Exception):
            await self._closer()


async def spawn_sentinel(
    *, name: str, tag: str
) -> tuple[NetworkSentinel, asyncio.subprocess.Process]:
    """Start the sentinel program as a host process, before the sandbox it will watch
    exists (it is ready by the time it does): then :meth:`NetworkSentinel.join` its
    namespace and :meth:`NetworkSentinel.start` it.

    It runs outside the sandbox's pid and mount namespaces (the sandbox cannot see or
    signal it) with this python (``-I -S``), a clean environment, in a session of its
    own (a terminal's Ctrl-C is for the runner), dying with this process. After its
    setup it drops to uid 65534 when it started as root. ``tag`` is shown in its
    command line (which sandbox it watches).

    Raises:
        OSError: the process cannot start.
    """
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-I", "-S", "-u", str(SENTINEL_PATH), "--for", tag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        limit=STREAM_LIMIT,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin = proc.stdin

    async def send(data: bytes) -> None:
        stdin.write(data)
        await stdin.drain()

    async def close() -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), STOP_WAIT)

    return NetworkSentinel(send, proc.stdout, name=name, closer=close), proc
