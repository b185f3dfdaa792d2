"""Users of a local sandbox and the host ids behind them.

Run as root of the host's user namespace, a sandbox gets a user namespace whose ids
0..65535 map to an unused host range (``base``.., random per sandbox): root and the
agent (1000) are then different users inside, and neither is a host user outside.
Otherwise bwrap maps one id only, and root and the agent are the same uid
(``separate`` is False).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hazmat.errors import SandboxError

__all__ = ["AGENT_UID", "ID_RANGE", "NOBODY", "IdMap", "can_map_ids"]

AGENT_UID = 1000
NOBODY = 65534
ID_RANGE = 65536
_BASE = 0x40000000
_SLOTS = 0x3000


def can_map_ids() -> bool:
    """True when we are root of the host's user namespace (so any id map is allowed)."""
    if os.geteuid() != 0:
        return False
    try:
        maps = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return False
    return maps[:3] == ["0", "0", "4294967295"]


@dataclass(frozen=True)
class IdMap:
    """How the users of one sandbox map to host ids."""

    separate: bool
    """True: a full map (root and agent differ); False: one id for both."""
    base: int
    """Host id of the sandbox's root when ``separate``."""
    user: str
    """``spec.user``: ``agent`` or ``root``."""

    @classmethod
    def make(cls, user: str) -> IdMap:
        """A fresh map for a sandbox whose agent is ``user`` (random base when separate)."""
        return cls(can_map_ids(), _BASE + secrets.randbelow(_SLOTS) * ID_RANGE, user)

    def uid_of(self, user: str) -> int:
        """The sandbox uid of ``user`` (``root``, ``agent``/``spec.user`` or a number).

        Raises:
            SandboxError: an unknown user.
        """
        if user == "root":
            return 0
        if user == "agent" or user == self.user:
            return AGENT_UID
        if user.isdigit() and int(user) < ID_RANGE:
            return int(user)
        raise SandboxError(
            f"unknown user {user!r} in the local sandbox", hint="use 'root' or 'agent'"
        )

    def request_ids(self, user: str | None) -> tuple[int | None, int | None]:
        """uid/gid fields of a supervisor request (None: stay the supervisor's own uid)."""
        uid = self.uid_of(user or self.user)
        if not self.separate or uid == 0:
            return None, None
        return uid, uid

    def host_id(self, uid: int) -> int:
        """The host id behind sandbox ``uid``."""
        return self.base + uid if self.separate else os.geteuid()

    def names(self) -> dict[int, str]:
        """Host uid -> user name, for process lists read from the host."""
        if self.separate:
            return {self.host_id(0): "root", self.host_id(AGENT_UID): self.user}
        return {0: "root", AGENT_UID: self.user}
