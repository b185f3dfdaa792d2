"""Pausing a local sandbox atomically: the cgroup freezer.

``SIGSTOP`` of each pid is not a pause: a process the sweep has not reached yet, or a
child forked meanwhile, sends ``SIGCONT`` to the others and they run again. The
cgroup freezer stops every process of a cgroup (and every one that joins it) inside
the kernel, where no signal can wake it; the freeze is done when the kernel says so.

- cgroup v2 (a cgroup of its own under the creator's cgroup on the ``cgroup2`` mount:
  the one that bounds memory and processes when the host delegates them, else a
  cgroup that only freezes, e.g. on hybrid hosts): ``cgroup.freeze`` 1, done when
  ``cgroup.events`` says ``frozen 1``;
- cgroup v1 (no ``cgroup2`` mount): the ``freezer`` controller, ``freezer.state``
  ``FROZEN``;
- no cgroup at all (not root of the host): the backend falls back to ``SIGSTOP`` and
  says so in its log and ``info()["freezer"]``.

The freezer cgroup is made at the first freeze (a halt), not at start: starting a
sandbox stays as fast as before. :meth:`Freezer.freeze` sets the empty cgroup frozen
first, then moves every process of the sandbox into it until none is left outside:
a process that arrives is frozen on arrival and never runs again, and one not moved
yet can only fork children that the next round moves too. Its name is the
sandbox's other cgroups' name (``hazmat-<pid>-<hex>``), so
:func:`~hazmat.sandbox.local.folders.cleanup_leftovers` finds it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from hazmat.sandbox.local.cgroups import cgroup_mounts
from hazmat.sandbox.local.snapshot import alive, descendants

__all__ = ["FREEZE_WAIT", "Freezer", "continue_each", "make_freezer", "stop_each"]

log = structlog.get_logger("hazmat.sandbox.local")

FREEZE_WAIT = 5.0
"""Seconds a freeze may take (a process in an uninterruptible wait delays it)."""


@dataclass(frozen=True)
class Freezer:
    """The freezer cgroup of one sandbox."""

    folder: Path
    kind: Literal["v2", "v1"]

    async def freeze(self, pids: Callable[[], list[int]], timeout: float = FREEZE_WAIT) -> bool:
        """Freeze the cgroup, then move into it every process ``pids()`` names, again
        until none is left outside (see the module docstring); True once the kernel
        says all are frozen, False when that took longer than ``timeout``.

        Raises:
            OSError: the cgroup cannot be written (e.g. it was removed).
        """
        if self.kind == "v2":
            (self.folder / "cgroup.freeze").write_text("1\n")
        else:
            (self.folder / "freezer.state").write_text("FROZEN\n")
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self._gather, pids()):
            if time.monotonic() > deadline:
                log.warning("freeze_incomplete", cgroup=str(self.folder), seconds=timeout)
                return False
        while not self.frozen():
            if time.monotonic() > deadline:
                log.warning("freeze_incomplete", cgroup=str(self.folder), seconds=timeout)
                return False
            await asyncio.sleep(0.001)
        return True

    def _gather(self, pids: list[int]) -> int:
        """Move each live one of ``pids`` not in the cgroup yet into it; how many were
        outside (0: all are in)."""
        try:
            inside = set((self.folder / "cgroup.procs").read_text().split())
        except OSError:
            inside = set()
        outside = [pid for pid in pids if str(pid) not in inside and alive(pid)]
        for pid in outside:
            with contextlib.suppress(OSError):  # gone meanwhile
                (self.folder / "cgroup.procs").write_text(f"{pid}\n")
        return len(outside)

    def frozen(self) -> bool:
        """True when every process of the cgroup is frozen."""
        try:
            if self.kind == "v2":
                events = (self.folder / "cgroup.events").read_text().split("\n")
                return "frozen 1" in events
            return (self.folder / "freezer.state").read_text().strip() == "FROZEN"
        except OSError:
            return False

    def thaw(self) -> None:
        """Let the processes run again (best effort: a removed cgroup is fine)."""
        with contextlib.suppress(OSError):
            if self.kind == "v2":
                (self.folder / "cgroup.freeze").write_text("0\n")
            else:
                (self.folder / "freezer.state").write_text("THAWED\n")

    def kill(self, spare: int | None = None) -> None:
        """SIGKILL every process of the cgroup but ``spare`` (the outer bwrap, which
        must live to reap the namespace's pid 1), then thaw: the killed die before
        running any more of their own code (v1 delivers the kill only once thawed),
        and ``spare`` can reap them."""
        with contextlib.suppress(OSError):
            for pid in (self.folder / "cgroup.procs").read_text().split():
                if pid != str(spare):
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
        self.thaw()


def make_freezer(name: str, made: list[Path]) -> tuple[Freezer | None, str]:
    """The sandbox's freezer and, when there is none, why.

    A v2 cgroup of ``made`` (the sandbox's cgroups) when there is one, else a new
    cgroup ``name`` on the ``cgroup2`` mount (next to the creator's own cgroup), else a
    new v1 ``freezer`` cgroup ``name``. A new folder is the caller's to join and remove
    like the others (it is not in ``made``). Never raises: ``(None, why)`` when no
    cgroup can be made (not root, no cgroupfs)."""
    for folder in made:
        if (folder / "cgroup.freeze").exists():
            return Freezer(folder, "v2"), ""
    mounts = cgroup_mounts()
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError as exc:
        return None, f"cannot read /proc/self/cgroup: {exc}"
    own = {}
    for line in lines:
        _hid, ctrls, path = line.split(":", 2)
        for ctrl in ctrls.split(",") if ctrls else [""]:
            own[ctrl] = path.lstrip("/")
    why = "no cgroup2 mount and no v1 freezer controller"
    kinds: tuple[tuple[str, Literal["v2", "v1"]], ...] = (("", "v2"), ("freezer", "v1"))
    for ctrl, kind in kinds:
        if ctrl not in mounts or ctrl not in own:
            continue
        folder = mounts[ctrl] / own[ctrl] / name
        try:
            folder.mkdir()
        except OSError as exc:
            why = f"cannot make {folder}: {exc}"
            continue
        probe = "cgroup.freeze" if kind == "v2" else "freezer.state"
        if (folder / probe).exists():
            return Freezer(folder, kind), ""
        with contextlib.suppress(OSError):
            folder.rmdir()
        why = f"{folder} has no {probe}"
    return None, why


async def stop_each(root: int, seen: set[int]) -> None:
    """The fallback where no cgroup exists: SIGSTOP ``root`` and its descendants, again
    for those forked meanwhile (a few rounds). Not atomic: a process not yet reached
    can send SIGCONT to the others. ``seen`` collects the pids stopped (to continue)."""
    for _ in range(50):
        pids = set(descendants(root)) | {root}
        fresh = pids - seen
        if not fresh:
            break
        for pid in fresh:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        seen |= fresh
        await asyncio.sleep(0.005)


def continue_each(pids: set[int]) -> None:
    """Undo :func:`stop_each`: SIGCONT each of ``pids`` and forget them."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)
    pids.clear()
