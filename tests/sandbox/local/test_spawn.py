"""How bwrap is started: util-linux's unshare/setpriv chain, or the python launcher where
those are missing. Both must leave a sandbox in the same state: ids mapped to its own
host range, every process in its cgroups with oom_score_adj 500, nested user
namespaces off, the same capabilities. Real bubblewrap, real namespaces."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hazmat.sandbox.local.spawn as spawn
from hazmat.errors import SandboxStartError
from hazmat.sandbox import SandboxSpec
from hazmat.sandbox.local import LocalSandbox

pytestmark = [pytest.mark.anyio, pytest.mark.local, pytest.mark.timeout(60)]

PROBE = (
    "grep -E '^(Uid|Gid|CapPrm|CapEff|CapAmb|CapBnd|NoNewPrivs)' /proc/self/status; "
    "cat /proc/sys/user/max_user_namespaces /proc/self/oom_score_adj; "
    "awk '{print $1, $3}' /proc/self/uid_map /proc/self/gid_map"
)


@pytest.fixture(params=["util-linux", "python-launcher"])
def how(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("the id map needs root of the host")
    if request.param == "python-launcher":
        monkeypatch.setattr(spawn, "_tools", lambda: None)
    elif spawn._tools() is None:
        pytest.skip("no unshare/setpriv here")
    yield request.param


async def _state(sb: Any) -> dict[str, str]:
    out = {}
    for user in ("root", None):
        r = await sb.exec(["sh", "-c", PROBE], user=user)
        assert r.ok, r
        out[user or "agent"] = r.stdout_text
    return out


async def test_both_ways_leave_the_same_sandbox(how: str) -> None:
    async with LocalSandbox(SandboxSpec(sentinel=False), episode_id=how) as sb:
        await sb.exec("sleep 30 >/dev/null 2>&1 &")
        state = await _state(sb)
        info = sb.info()
        assert info["uid_separation"] is True
        base = info["id_base"]
        for who, text in state.items():
            lines = text.splitlines()
            # max_user_namespaces, oom_score_adj (the agent's commands: the OOM killer's pick)
            assert ("0\n1000\n" if who == "agent" else "0\n500\n") in text, (who, text)
            assert "0 65536" in text  # maps: 0 -> base, 65536 ids
            assert lines.count("0 65536") == 2
            if who == "agent":
                assert "CapEff:\t0000000000000000" in text and "CapPrm:\t0000000000000000" in text
                assert "CapAmb:\t0000000000000000" in text and "Uid:\t1000\t1000" in text
            else:
                assert "CapEff:\t00000000000000ff" in text and "Uid:\t0\t0" in text
        uid_map = Path(f"/proc/{info['pid']}/uid_map").read_text().split()
        assert uid_map == ["0", str(base), "65536"]
        procs = await sb.processes() or []
        assert any("sleep 30" in p["cmdline"] for p in procs)
        cgroups = [Path(c) for c in info["cgroups"]]
        assert cgroups, "root of the host gets cgroups"
        for folder in cgroups:
            members = set((folder / "cgroup.procs").read_text().split())
            for proc in procs:
                assert str(proc["pid"]) in members, (folder, proc)
        for proc in procs:  # at least 500; the agent's commands 1000 (the OOM killer's pick)
            adj = Path(f"/proc/{proc['pid']}/oom_score_adj").read_text().strip()
            assert adj == ("1000" if "sleep 30" in proc["cmdline"] else "500"), proc


async def test_a_cgroup_that_cannot_be_joined_fails_the_start_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chain's failure path with a real failed write: the move targets a folder
    that is not a cgroup (``/proc/self``), so writing its ``cgroup.procs`` fails."""
    if os.geteuid() != 0 or spawn._tools() is None:
        pytest.skip("needs root of the host and util-linux")
    real = spawn.join_cgroups
    monkeypatch.setattr(spawn, "join_cgroups", lambda pids, _c: real(pids, [Path("/proc/self")]))
    sb = LocalSandbox(SandboxSpec(sentinel=False), episode_id="refused")
    with pytest.raises(SandboxStartError, match="cannot join /proc/self"):
        async with sb:
            pytest.fail("started")
    assert await sb.leftovers() == []
