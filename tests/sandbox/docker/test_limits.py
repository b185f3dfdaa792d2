"""The box's cgroup, found on this host only when the box's init lives here."""

from __future__ import annotations

import os
from typing import Any

from hazmat.sandbox.docker.limits import box_cgroups


class FakeApi:
    """Answers ``inspect_container`` with a given pid, as a daemon elsewhere would."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def inspect_container(self, cid: str) -> dict[str, Any]:
        if self.pid is None:
            raise RuntimeError("no such container")
        return {"State": {"Pid": self.pid}}


def test_a_pid_that_is_not_the_boxs_here_gives_no_cgroup() -> None:
    """A remote daemon's box pid names some unrelated process of this host (here: the
    test itself): its cgroup does not name the box, so nothing is read from it."""
    assert box_cgroups(FakeApi(os.getpid()), "f" * 64) == []
    assert box_cgroups(FakeApi(0), "f" * 64) == []  # a stopped box
    assert box_cgroups(FakeApi(None), "f" * 64) == []  # the daemon does not know it
