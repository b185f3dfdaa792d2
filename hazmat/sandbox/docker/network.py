"""The Docker backend's network watch: the sentinel (a host process or a sidecar) and
the allowlist gateway.

- The *sentinel* (every Docker sandbox unless ``spec.sentinel`` is off) runs in the
  box's network namespace and nothing else of it (own pid and mount namespaces: the
  agent cannot see or signal it), sets the any-address route, opens its packet socket,
  binds port 53 and the sinkhole ports, then drops to uid 65534 (and no new
  privileges). Where this process is root on the daemon's host (a local socket, the
  box's pid visible here, see :func:`box_pid`), it is a host process that joins the
  box's namespace with ``setns``, exactly as the local backend's
  (:func:`~hazmat.sandbox.netwatch.spawn_sentinel`): started while the box is made,
  ready when the box runs; no container to create and start. Otherwise (rootless or
  remote daemon, ``HAZMAT_DOCKER_SENTINEL=sidecar``) a *sidecar*: a container from the
  sandbox image running ``/opt/hazmat/sentinel.py`` with
  ``network_mode=container:<box>``, cap_drop ALL but NET_ADMIN, NET_RAW,
  NET_BIND_SERVICE, SETUID, SETGID, read-only root, no-new-privileges, 32 pids,
  128 MiB.
  The box's ``resolv.conf`` names 127.0.0.1 (``dns=``); on an internal network Docker's
  embedded resolver (127.0.0.11) answers the services' names and forwards every other
  name to it.
- The *gateway* (``network: allowlist`` only): a container on the sandbox's internal
  network and on an egress network (a per-sandbox bridge with NAT, or the existing
  network named by ``HAZMAT_EGRESS_NETWORK``). The sentinel answers allowlisted names
  with the gateway's address; the gateway forwards HTTP (by Host) and TLS (by SNI, no
  interception) to allowlisted hosts only and records every request. Raw connections to
  any other address still have no route: they end at the sentinel.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import structlog

from hazmat.errors import SandboxStartError
from hazmat.sandbox.docker.stream import MuxStream
from hazmat.sandbox.netwatch import NetworkSentinel

__all__ = [
    "EGRESS_ENV",
    "GATEWAY_CAPS",
    "SENTINEL_CAPS",
    "SENTINEL_ENV",
    "SENTINEL_IN_IMAGE",
    "box_pid",
    "create_sentinel",
    "make_egress_network",
    "sentinel_mode",
    "start_gateway",
    "start_sentinel",
]

SENTINEL_IN_IMAGE = "/opt/hazmat/sentinel.py"
SENTINEL_CAPS = ("NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "SETUID", "SETGID")
GATEWAY_CAPS = ("NET_BIND_SERVICE", "SETUID", "SETGID")
SENTINEL_ENV = "HAZMAT_DOCKER_SENTINEL"
"""``host``, ``sidecar`` or ``auto`` (the default): where the sentinel runs."""
EGRESS_ENV = "HAZMAT_EGRESS_NETWORK"
"""Name of an existing Docker network the allowlist gateway uses to reach allowed hosts."""

log = structlog.get_logger("hazmat.sandbox.docker.network")


def sentinel_mode() -> str:
    """``host`` when this process is root and talks to a local daemon (so it can join a
    box's network namespace), else ``sidecar``; :data:`SENTINEL_ENV` decides when set."""
    wanted = os.environ.get(SENTINEL_ENV, "auto")
    if wanted in ("host", "sidecar"):
        return wanted
    local = os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")
    return "host" if os.geteuid() == 0 and local else "sidecar"


def box_pid(api: Any, cid: str) -> int | None:
    """The host pid of running container ``cid``'s main process, when this process sees
    it (``/proc/PID/cgroup`` names the container); None otherwise (the daemon runs in
    another pid namespace or on another host)."""
    try:
        pid = int(api.inspect_container(cid)["State"]["Pid"])
        with open(f"/proc/{pid}/cgroup", encoding="ascii", errors="replace") as f:
            ours = cid in f.read()
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return pid if pid > 0 and ours else None


def _host_config(api: Any, caps: tuple[str, ...], network_mode: str) -> dict[str, Any]:
    import docker.types

    return dict(
        api.create_host_config(
            cap_drop=["ALL"],
            cap_add=list(caps),
            security_opt=["no-new-privileges:true"],
            read_only=True,
            network_mode=network_mode,
            pids_limit=32,
            mem_limit="128m",
            memswap_limit="128m",
            nano_cpus=int(0.5e9),
            ipc_mode="private",
            ulimits=[
                docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
        )
    )


def _create(
    api: Any,
    image: str,
    labels: dict[str, str],
    host_config: dict[str, Any],
    made: list[str],
    networking: Any = None,
) -> str:
    """Create (not start) one container running the sentinel program; its id goes to
    ``made`` at once, so a failed start still removes it."""
    cid = str(
        api.create_container(
            image,
            command=["python3", "-I", "-S", "-u", SENTINEL_IN_IMAGE],
            user="0:0",
            labels=labels,
            stdin_open=True,
            tty=False,
            host_config=host_config,
            networking_config=networking,
        )["Id"]
    )
    made.append(cid)
    return cid


async def _launch(api: Any, cid: str, name: str) -> NetworkSentinel:
    """Attach to container ``cid`` (before it starts, so no line is lost) and start it."""
    raw = await asyncio.to_thread(
        api.attach_socket, cid, {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
    )
    stream = MuxStream(raw, f"{name} {cid[:12]}")
    sentinel = NetworkSentinel(stream.send, stream.stdout, name=name, closer=stream.close)
    try:
        await asyncio.to_thread(api.start, cid)
    except Exception:
        await sentinel.close()
        raise
    return sentinel


def create_sentinel(
    api: Any, *, image: str, box: str, labels: dict[str, str], made: list[str]
) -> str:
    """Create (not start) the sentinel sidecar for container ``box``, which need not be
    running yet; returns its id (also appended to ``made``)."""
    return _create(
        api,
        image,
        {**labels, "hazmat.role": "sentinel"},
        _host_config(api, SENTINEL_CAPS, f"container:{box}"),
        made,
    )


async def start_sentinel(
    api: Any,
    cid: str,
    *,
    allow: list[str],
    gateway: str | None,
) -> NetworkSentinel:
    """Start the sidecar made by :func:`create_sentinel` (its box must be running) and set
    it up.

    Raises:
        SandboxStartError: it did not start or could not set up (message says why).
    """
    try:
        sentinel = await _launch(api, cid, "sentinel")
    except Exception as exc:
        raise SandboxStartError(f"the network sentinel did not start: {exc}") from None
    try:
        await sentinel.start(mode="netns", allow=allow, gateway=gateway)
    except Exception as exc:
        await sentinel.close()
        raise SandboxStartError(f"the network sentinel did not start: {exc}") from None
    return sentinel


def make_egress_network(api: Any, name: str, labels: dict[str, str], made: list[str]) -> str:
    """The network the gateway reaches allowed hosts through: ``$HAZMAT_EGRESS_NETWORK``
    when set (must exist), else a new labelled bridge network with NAT.

    Raises:
        SandboxStartError: ``HAZMAT_EGRESS_NETWORK`` names no network.
    """
    import docker.errors

    wanted = os.environ.get(EGRESS_ENV)
    if wanted:
        try:
            api.inspect_network(wanted)
        except docker.errors.NotFound:
            raise SandboxStartError(f"{EGRESS_ENV}={wanted}: no such Docker network") from None
        return wanted
    net = api.create_network(
        name, driver="bridge", internal=False, labels=labels, check_duplicate=True
    )
    made.append(net["Id"])
    return name


async def start_gateway(
    api: Any,
    *,
    image: str,
    internal: str,
    egress: str,
    labels: dict[str, str],
    made: list[str],
    allow: list[str],
) -> tuple[NetworkSentinel, str]:
    """Start the allowlist gateway on networks ``internal`` and ``egress``.

    Returns the gateway and its address on ``internal``.

    Raises:
        SandboxStartError: it did not start (message says why).
    """
    import docker.types

    networking = docker.types.NetworkingConfig(
        {internal: docker.types.EndpointConfig(api._version, aliases=["hazmat-gateway"])}
    )
    cid = await asyncio.to_thread(
        _create,
        api,
        image,
        {**labels, "hazmat.role": "gateway"},
        _host_config(api, GATEWAY_CAPS, internal),
        made,
        networking,
    )
    try:
        gateway = await _launch(api, cid, "gateway")
    except Exception as exc:
        raise SandboxStartError(f"the allowlist gateway did not start: {exc}") from None
    try:
        await asyncio.to_thread(api.connect_container_to_network, cid, egress)
        await gateway.start(mode="gateway", allow=allow, ports=[80, 443])
        info = await asyncio.to_thread(api.inspect_container, cid)
        address = str(info["NetworkSettings"]["Networks"][internal]["IPAddress"])
    except Exception as exc:
        await gateway.close()
        raise SandboxStartError(f"the allowlist gateway did not start: {exc}") from None
    log.info("gateway_started", container=cid[:12], address=address, allow=allow)
    return gateway, address
