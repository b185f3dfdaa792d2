"""The host side of the network sentinel (``sentinel.py``): start it, configure it, drain it.

A backend starts the sentinel program inside the sandbox's network namespace (local: a
host process joining it with ``setns``; Docker: a sidecar container sharing the box's
namespace) and hands its stdin/stdout to :class:`NetworkSentinel`. After each step the monitors call
:meth:`NetworkSentinel.drain`: the events since the previous drain become
``Observation.signals`` for the ``after`` rules, and every event is also kept (up to
:data:`HISTORY_CAP`) for the halt snapshot (``episodes/<id>/network.jsonl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from hazmat.errors import SandboxError
from hazmat.sandbox.channel import Channel, LineReader
from hazmat.sandbox.guest import SENTINEL_PATH

__all__ = ["HISTORY_CAP", "SENTINEL_PATH", "NetworkSentinel", "sentinel_source"]

HISTORY_CAP = 10_000
"""Events kept per sandbox for the halt snapshot; later ones are counted, not kept."""

log = structlog.get_logger("hazmat.sandbox.netwatch")


def sentinel_source() -> bytes:
    """The bytes of ``sentinel.py``."""
    return SENTINEL_PATH.read_bytes()


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
        await self._channel.start(timeout=timeout)
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
        if dropped:
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
