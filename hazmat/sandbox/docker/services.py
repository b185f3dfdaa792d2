"""A sandbox's services: one container each beside the agent's box, on its network.

Hardened like the box, except that root in a service keeps a server's capabilities
(:data:`~hazmat.sandbox.docker.config.SERVICE_CAPS`) and its root stays writable
unless asked. From the sandbox image, ``image:`` or a ``build:`` folder (see
:func:`~hazmat.sandbox.docker.image.build_service_image`); its files are placed and its
setup run before its command starts (it waits behind a gate file), then it is
health-checked, bounded by :data:`HEALTH_TIMEOUT`.

Setup and health checks use a plain ``docker exec`` (:func:`docker_exec`): a service
image need not have python for hazmat's supervisor. Commands of ``exec(service=...)``
do: they go to a supervisor per (service, user), started from the guest programs'
sources with one ``docker exec`` and kept open (:func:`open_channel`), so their
timeouts also kill the whole process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import structlog

from hazmat.errors import SandboxError, SandboxStartError
from hazmat.sandbox.base import ExecResult, ServiceSpec
from hazmat.sandbox.channel import Channel
from hazmat.sandbox.docker.config import SERVICE_CAPS, Maker, slug
from hazmat.sandbox.docker.files import files_tar, put_into_mounts, under
from hazmat.sandbox.docker.image import build_service_image, resolve_image
from hazmat.sandbox.docker.stream import STDERR, FrameDecoder, MuxStream
from hazmat.sandbox.guest import inline_command

__all__ = ["HEALTH_TIMEOUT", "check_setup", "docker_exec", "open_channel", "start_service"]

log = structlog.get_logger("hazmat.sandbox.docker")

HEALTH_TIMEOUT = 60.0
"""Seconds a service may take to pass its health check."""
GATE = "/tmp/.hazmat-go"
GATE_SCRIPT = f'while [ ! -e {GATE} ]; do sleep 0.05; done; exec "$@"'


def docker_exec(
    api: Any,
    cid: str,
    argv: list[str],
    *,
    user: str = "root",
    privileged: bool = False,
    stdin: bytes | None = None,
    timeout: float = 60.0,
    cap: int = 1 << 20,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
) -> ExecResult:
    """One ``docker exec`` with a hard deadline (``timeout -s KILL``) and capped output."""
    started = time.monotonic()
    cmd = ["timeout", "-s", "KILL", f"{max(timeout, 0.1):.3f}", *argv]
    exec_id = api.exec_create(
        cid,
        cmd,
        stdin=stdin is not None,
        user=user,
        privileged=privileged,
        environment=env,
        workdir=workdir,
    )["Id"]
    raw = api.exec_start(exec_id, socket=True)
    sock: Any = getattr(raw, "_sock", raw)
    out, err = bytearray(), bytearray()
    totals = {False: 0, True: 0}
    frames = FrameDecoder()
    try:
        if stdin is not None:
            sock.sendall(stdin)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1.0)
        deadline = started + timeout + 10.0
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                break
            for kind, payload in frames.feed(chunk):
                target = err if kind == STDERR else out
                totals[kind == STDERR] += len(payload)
                room = cap - len(target)
                if room > 0:
                    target += payload[:room]
    finally:
        with contextlib.suppress(Exception):
            sock.close()
    code = None
    for _ in range(50):
        info = api.exec_inspect(exec_id)
        if not info.get("Running"):
            code = info.get("ExitCode")
            break
        time.sleep(0.02)
    duration = time.monotonic() - started
    timed_out = duration >= timeout and code in (None, 124, 137)
    return ExecResult(
        exit_code=124 if timed_out or code is None else int(code),
        stdout=bytes(out),
        stderr=bytes(err),
        duration=duration,
        timed_out=timed_out,
        truncated=totals[False] > cap or totals[True] > cap,
        stdout_total=totals[False],
        stderr_total=totals[True],
    )


def check_setup(sandbox_id: str, result: ExecResult, cmd: str, where: str) -> None:
    """Log one setup command; raise when it failed.

    Raises:
        SandboxStartError: it exited non-zero or timed out (with its output's tail).
    """
    log.info(
        "sandbox_setup", sandbox=sandbox_id, where=where, command=cmd, exit_code=result.exit_code
    )
    if not result.ok:
        detail = (result.stderr_text or result.stdout_text).strip()[-500:]
        why = "timed out" if result.timed_out else f"exit {result.exit_code}"
        raise SandboxStartError(f"{where}: setup command failed ({why}): {cmd}: {detail}")


def command_argv(command: list[str] | str | None) -> list[str] | None:
    """A service's ``command:`` as an argv (a string runs with ``/bin/sh -c``)."""
    if command is None:
        return None
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return list(command)


async def _exec(make: Maker, cid: str, cmd: str, timeout: float) -> ExecResult:
    return await asyncio.to_thread(
        docker_exec, make.api, cid, ["/bin/sh", "-c", cmd], timeout=timeout, workdir="/"
    )


async def start_service(
    make: Maker, client: Any, name: str, svc: ServiceSpec, *, exec_timeout: float
) -> str:
    """Make, fill, start and health-check service ``name``; returns its container id.

    Raises:
        ImageError: its image is missing or its build failed.
        SandboxStartError: no command, files could not be placed, setup or the health
            check failed, or it exited.
    """
    if svc.build:
        image = await asyncio.to_thread(build_service_image, svc.build, client=client)
    elif svc.image:
        image = str((await asyncio.to_thread(resolve_image, client, svc.image)).id)
    else:
        image = make.image_id
    info = await asyncio.to_thread(make.api.inspect_image, image)
    config = info.get("Config") or {}
    original = command_argv(svc.command)
    entry = list(config.get("Entrypoint") or [])
    if original is None:
        original = list(config.get("Cmd") or [])
    else:
        entry = []
    argv = entry + original
    if not argv:
        raise SandboxStartError(f"service {name}: no command (set command: in the task)")
    late = {p: f for p, f in svc.files.items() if under(p, ["/tmp"])}
    early = {p: f for p, f in svc.files.items() if p not in late}
    gated = bool(svc.setup or late)
    mounts = await asyncio.to_thread(make.volumes, f"svc-{name}", {"/tmp": (0, 0, 0o1777)})
    host_config = make.host_config(
        read_only=svc.read_only_root, nnp=True, cap_add=list(SERVICE_CAPS), mounts=mounts
    )
    cid = await asyncio.to_thread(
        make.create,
        image,
        argv if gated else argv[1:],
        user=svc.user,
        workdir=svc.workdir,
        env=dict(svc.env),
        host_config=host_config,
        alias=name,
        entrypoint=["/bin/sh", "-c", GATE_SCRIPT, "sh"] if gated else argv[:1],
        extra={"hazmat.role": "service", "hazmat.service": name},
    )
    if early:
        data = await asyncio.to_thread(files_tar, early, make.user_ids, "/")
        try:
            await asyncio.to_thread(make.api.put_archive, cid, "/", data)
        except Exception as exc:
            raise SandboxStartError(f"service {name}: placing files failed: {exc}") from None
    await asyncio.to_thread(make.api.start, cid)
    if late:
        await asyncio.to_thread(put_into_mounts, make.api, cid, late, ["/tmp"], make.user_ids)
    for cmd in svc.setup:
        result = await _exec(make, cid, cmd, exec_timeout)
        check_setup(make.sandbox_id, result, cmd, f"service {name}")
    if gated:
        result = await _exec(make, cid, f"touch {GATE}", 30.0)
        check_setup(make.sandbox_id, result, f"touch {GATE}", f"service {name}")
    if svc.healthcheck:
        await _wait_healthy(make, name, cid, svc.healthcheck)
    return cid


async def _wait_healthy(make: Maker, name: str, cid: str, check: str) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    last: ExecResult | None = None
    while time.monotonic() < deadline:
        state = (await asyncio.to_thread(make.api.inspect_container, cid))["State"]
        if not state.get("Running"):
            logs = await asyncio.to_thread(make.logs, cid)
            raise SandboxStartError(
                f"service {name} exited (code {state.get('ExitCode')}) before it was "
                f"healthy: {logs}"
            )
        last = await _exec(make, cid, check, min(10.0, max(1.0, deadline - time.monotonic())))
        if last.ok:
            return
        await asyncio.sleep(0.2)
    detail = (last.stderr_text or last.stdout_text).strip()[-300:] if last else ""
    raise SandboxStartError(
        f"service {name}: health check did not pass within {HEALTH_TIMEOUT:.0f}s: {check}: {detail}"
    )


async def open_channel(api: Any, cid: str, user: str, name: str) -> tuple[Channel, MuxStream]:
    """Start hazmat's supervisor in container ``cid`` as ``user`` (one ``docker exec``,
    its hijacked socket is the channel) and wait until it is ready.

    Raises:
        SandboxError: it did not start (no python3 in the image, no such user...).
    """
    state_dir = f"/tmp/.hazmat-{slug(user, 16)}"
    argv = ["python3", "-I", "-S", "-u", *inline_command("wire", "procs", "monitor", "serve")]
    exec_id = (
        await asyncio.to_thread(
            api.exec_create,
            cid,
            argv,
            stdin=True,
            user=user,
            environment={"HAZMAT_STATE_DIR": state_dir},
        )
    )["Id"]
    raw = await asyncio.to_thread(api.exec_start, exec_id, socket=True)
    stream = MuxStream(raw, f"{name}:{user}")
    channel = Channel(stream.send, stream.stdout, name=f"{name} as {user}")
    try:
        await channel.start(timeout=30.0)
    except SandboxError as exc:
        await stream.close()
        raise SandboxError(
            f"cannot run commands in {name} as {user}: {exc} {stream.stderr_text()}"
        ) from None
    return channel, stream
