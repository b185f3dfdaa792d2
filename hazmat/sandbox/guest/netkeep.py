"""What the network sentinel keeps of its events between two drains (guest program,
standard library only, python 3.8+; used by ``watch.py``).

A flood must not blind the sentinel, so events are kept in three tiers, each with its
own bound, and whatever is not kept is counted (``dropped``, which the host turns into
an ``overflow`` signal the default policy halts on):

1. *watched*: an event that carries one of the strings the host asked to watch for
   (the episode's secrets and canaries, in the encodings the policy looks for; the
   ``watch`` op) is marked ``"watched": true`` and kept up to :data:`MAX_WATCHED`,
   whatever the other tiers hold. Matching is case-insensitive, over every text field
   (name, host, path, payload...), at ingest: before any cap.
2. *suspicious*: a DNS lookup with the ``suspicious`` verdict (a long or high-entropy
   label) is kept up to :data:`MAX_SUSPICIOUS` beyond the ordinary cap.
3. everything else: up to :data:`MAX_EVENTS` of each type; repeats of one connection
   (protocol, address, port) are counted on the first one, not listed.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_EVENTS = 2000
"""Ordinary events kept per type between two drains."""
MAX_SUSPICIOUS = 2000
"""Suspicious lookups kept beyond :data:`MAX_EVENTS`."""
MAX_WATCHED = 5000
"""Events carrying a watched string kept, whatever the other bounds."""
MIN_NEEDLE = 6
"""Shorter watched strings are ignored (they would match everywhere)."""
MAX_NEEDLES = 4096


def now() -> float:
    return round(time.time(), 3)


class Keeper:
    """The events since the last drain, bounded as the module doc says."""

    def __init__(self) -> None:
        self.needles: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.counts: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.per_type: dict[str, int] = {}
        self.dropped = 0
        self.suspicious = 0
        self.watched = 0

    def watch(self, needles: list[Any]) -> int:
        """Watch for these strings from now on (replacing the previous ones); returns how
        many are watched."""
        found = {str(n).lower() for n in needles if len(str(n)) >= MIN_NEEDLE}
        self.needles = sorted(found)[:MAX_NEEDLES]
        return len(self.needles)

    def carries(self, event: dict[str, Any]) -> bool:
        """True when a text field of ``event`` holds a watched string."""
        if not self.needles:
            return False
        text = "\n".join(v for v in event.values() if isinstance(v, str)).lower()
        return any(n in text for n in self.needles)

    def emit(self, event: dict[str, Any]) -> None:
        """Keep ``event`` (stamped ``t`` and ``seen_by``) or count it as dropped."""
        event.setdefault("t", now())
        event["seen_by"] = "sentinel"
        key: tuple[Any, ...] | None = None
        if event["type"] == "connection":
            key = (event["proto"], event["remote"], event.get("port"))
            known = self.counts.get(key)
            if known is not None:
                known["count"] += 1
                return
            event["count"] = 1
        if self.carries(event):
            event["watched"] = True
            if self.watched >= MAX_WATCHED:
                self.dropped += 1
                return
            self.watched += 1
        else:
            kind = event["type"]
            if self.per_type.get(kind, 0) < MAX_EVENTS:
                self.per_type[kind] = self.per_type.get(kind, 0) + 1
            elif event.get("suspicious") and self.suspicious < MAX_SUSPICIOUS:
                self.suspicious += 1
            else:
                self.dropped += 1
                return
        if key is not None:
            self.counts[key] = event
        self.events.append(event)

    def drain(self) -> dict[str, Any]:
        """``{"events", "dropped"}`` since the previous drain; starts afresh."""
        out = {"events": self.events, "dropped": self.dropped}
        self.events, self.counts, self.per_type = [], {}, {}
        self.dropped = self.suspicious = self.watched = 0
        return out
