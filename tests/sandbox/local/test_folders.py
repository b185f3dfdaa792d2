"""The backing folder of a local sandbox: its shell state lives off the agent's disk."""

from __future__ import annotations

import pytest

from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.local import LocalSandbox

pytestmark = [pytest.mark.anyio, pytest.mark.local, pytest.mark.timeout(120)]

FILL = (
    "for i in $(seq 40); do fallocate -l 128M ~/pad$i 2>/dev/null || break; done;"
    " for i in $(seq 40); do head -c 128M /dev/zero > ~/z$i 2>/dev/null || break; done;"
    " for i in $(seq 300); do echo x > /tmp/s$i || break; done 2>/dev/null;"
    " df --output=avail -B1 ~ | tail -1"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_full_disk_keeps_the_persistent_shell_s_state() -> None:
    """The agent fills its disk (blocks, then /tmp), then ``cd /tmp && export X=1``:
    the shell state (under /.hazmat/state, on the agent's disk) was lost silently, the
    next call ran in the old folder without X. It now lives on a small tmpfs of its
    own: the next call sees both."""
    async with LocalSandbox(SandboxSpec(), episode_id="full-disk") as sb:
        if not isinstance(sb.info()["disk"], dict):
            pytest.fail(f"no disk bound: {sb.info()['disk']}")
        filled = await sb.shell(FILL, timeout=60)
        assert filled.stdout_text.strip().splitlines()[-1] in ("0", "4096"), filled
        r = await sb.shell("cd /tmp && export X=1; echo still-here")
        assert r.ok and "still-here" in r.stdout_text, r
        r = await sb.shell("echo X=$X; pwd")
        assert r.stdout_text.split() == ["X=1", "/tmp"], r
        assert not (await sb.exec("head -c 65536 /dev/zero > ~/more")).ok  # still full
