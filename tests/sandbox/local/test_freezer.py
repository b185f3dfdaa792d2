"""The cgroup freezer of the local backend, against processes that revive each other."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.local import LocalSandbox
from hazmat.sandbox.local.cgroups import cgroup_mounts
from hazmat.sandbox.local.freezer import Freezer
from hazmat.sandbox.local.snapshot import alive, pids_in_namespace

pytestmark = [pytest.mark.timeout(60)]

REVIVERS = (
    "(while :; do echo x >> /tmp/count; done) >/dev/null 2>&1 & "
    "for i in 1 2; do (while :; do (kill -CONT -1 2>/dev/null); done) >/dev/null 2>&1 & done"
)
"""A counter, and loops whose short-lived children send SIGCONT to every process."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.local
async def test_a_frozen_sandbox_stays_frozen_whatever_sigcont_is_sent(tmp_path: Path) -> None:
    sb = LocalSandbox(SandboxSpec(), episode_id="freeze")
    await sb.start()
    try:
        assert sb.info()["freezer"] == "cgroup", sb.info()["freezer"]  # made at need
        assert (await sb.exec(REVIVERS)).ok
        await asyncio.sleep(0.3)
        assert sb._backing is not None
        root = sb._backing.root_fd

        def size_now() -> int:
            return os.stat("tmp/count", dir_fd=root).st_size

        await sb.freeze()
        assert sb._freezer is not None and sb._freezer.frozen(), sb.info()["freezer"]
        inside = (sb._freezer.folder / "cgroup.procs").read_text().split()
        live = sorted(p for p in sb._pids() if alive(p))  # zombies cannot move, nor run
        assert sorted(map(int, inside)) == live, "every process is in the frozen cgroup"
        size = size_now()
        pids = pids_in_namespace(sb._pidns)
        assert len(pids) >= 5, pids
        for _ in range(20):  # the host sends SIGCONT too
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(0.02)
        assert size_now() == size, "a frozen process wrote"
        await sb.snapshot(tmp_path / "snap")  # freezes again, thaws to frozen (it was)
        assert sb._freezer.frozen() and size_now() == size
        sb._thaw()
        await asyncio.sleep(0.3)
        assert size_now() > size, "thawed processes run again"
        await sb.freeze()
    finally:
        ns = sb._pidns
        t0 = time.monotonic()
        await sb.stop()
        took = time.monotonic() - t0
    assert took < 3, f"stop of a frozen sandbox took {took:.1f}s"
    assert not pids_in_namespace(ns, time.clock_gettime(time.CLOCK_BOOTTIME))
    assert not await sb.leftovers()


def test_the_v1_freezer_freezes_a_process_tree_that_revives_itself() -> None:
    """Hosts without cgroup2 use the v1 ``freezer`` controller; this host has both, so
    the v1 one is tried on a plain process tree."""
    mounts = cgroup_mounts()
    if "freezer" not in mounts or os.geteuid() != 0:
        pytest.skip("no v1 freezer controller here")
    own = next(
        line.split(":", 2)[2]
        for line in Path("/proc/self/cgroup").read_text().splitlines()
        if "freezer" in line.split(":", 2)[1].split(",")
    )
    folder = mounts["freezer"] / own.lstrip("/") / f"hazmat-{os.getpid()}-v1test"
    folder.mkdir()
    proc = subprocess.Popen(
        ["/bin/sh", "-c", "while :; do (kill -CONT 0 2>/dev/null); echo x; done"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    freezer = Freezer(folder, "v1")
    try:
        time.sleep(0.1)  # the loop forks: the children move along with the next rounds
        assert asyncio.run(freezer.freeze(lambda: [proc.pid]))
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        time.sleep(0.1)
        while proc.stdout.read(65536):
            pass
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.2)
        assert not proc.stdout.read(65536), "a frozen process wrote"
        freezer.kill()
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        freezer.kill()
        proc.kill()
        proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while folder.exists() and time.monotonic() < deadline:
            try:
                folder.rmdir()
            except OSError:
                time.sleep(0.05)
