"""Killing a local sandbox's processes: the namespace's pid 1 first, bwrap as fallback.

SIGKILL of the namespace's pid 1 (the inner bwrap) takes every process of the sandbox
with it; the outer bwrap, the host's child, then reaps it and exits. Killing the
outer one first would orphan the inner one as a zombie where pid 1 of the host does
not reap (containers, VMs), so it only gets SIGKILL as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable

from hazmat.sandbox.local.snapshot import alive

__all__ = ["STOP_WAIT", "kill_now", "kill_sandbox"]

STOP_WAIT = 5.0

Proc = asyncio.subprocess.Process


def kill_now(
    proc: Proc | None, sentinel: Proc | None, child: int | None, ours: Callable[[int], bool]
) -> None:
    """Synchronous last resort: SIGKILL the sentinel, the namespace's pid 1 ``child``
    (while ``ours(child)``) and the outer bwrap's process group."""
    if sentinel is not None and sentinel.returncode is None:
        with contextlib.suppress(OSError):
            sentinel.kill()
    if child is not None and ours(child):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    if proc is not None and proc.returncode is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


async def kill_sandbox(
    proc: Proc | None,
    sentinel: Proc | None,
    child: Callable[[], int | None],
    ours: Callable[[int], bool],
) -> None:
    """Kill a sentinel that never set up, then the sandbox (see the module docstring),
    and wait (at most :data:`STOP_WAIT` per step) until the outer bwrap ``proc`` exited
    and pid 1 is gone. ``child()`` reads pid 1's host pid (None while bwrap has not
    said it); ``ours(pid)`` is True while ``pid`` is still that process."""
    if sentinel is not None and sentinel.returncode is None:  # one that never set up
        with contextlib.suppress(ProcessLookupError):
            sentinel.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sentinel.wait(), STOP_WAIT)
    pid = child()
    if proc is not None and pid is None and proc.returncode is None:
        for _ in range(100):
            pid = child()
            if pid is not None:
                break
            await asyncio.sleep(0.01)
    if pid is not None and ours(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if proc is not None:
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), STOP_WAIT)
        if proc.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_WAIT)
    if pid is not None:
        deadline = time.monotonic() + STOP_WAIT
        while ours(pid) and alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
