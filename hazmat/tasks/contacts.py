"""Was a task's service contacted? Counting the TCP connections each service accepted.

Each service runs in its own network namespace, whose ``/proc/net/snmp`` counts the TCP
connections it accepted (``Tcp: PassiveOpens``). Read once when the episode starts (after
the health checks) and once when the agent is done, the difference is how many
connections the service accepted during the episode: 0 means nothing ever reached it.
Validation uses it to mark a solution that never touched a declared service as unproven.
Only TCP is counted (a UDP-only service is never "contacted").
"""

from __future__ import annotations

import asyncio

from hazmat.sandbox.base import Sandbox

__all__ = ["accepted_connections", "contacts_since"]


def _passive_opens(text: str) -> int | None:
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("Tcp:")]
    if len(lines) < 2:
        return None
    names, values = lines[0], lines[1]
    try:
        return int(values[names.index("PassiveOpens")])
    except (ValueError, IndexError):
        return None


async def accepted_connections(sb: Sandbox, services: list[str]) -> dict[str, int | None]:
    """TCP connections each service has accepted so far (None: it could not be read).

    Never raises: a service that cannot be asked counts as unknown.
    """

    async def one(name: str) -> int | None:
        try:
            res = await sb.exec(["cat", "/proc/net/snmp"], user="root", service=name, timeout=15)
        except Exception:
            return None
        return _passive_opens(res.stdout_text) if res.ok else None

    values = await asyncio.gather(*(one(n) for n in services))
    return dict(zip(services, values, strict=True))


def contacts_since(
    before: dict[str, int | None], after: dict[str, int | None]
) -> dict[str, int | None]:
    """Connections accepted between two readings, per service (None: unknown)."""
    out: dict[str, int | None] = {}
    for name, end in after.items():
        start = before.get(name)
        out[name] = None if start is None or end is None else max(0, end - start)
    return out
