"""The Docker backend: a hardened container per sandbox, one persistent channel into it.

What a sandbox is made of (everything labelled ``hazmat=1``, ``hazmat.run``,
``hazmat.episode``, ``hazmat.backend=docker``, ``hazmat.sandbox`` plus ``spec.labels``):

- the agent's *box*: a container from ``spec.image`` whose main process is the
  supervisor (``supervisor.py``) running as root with only CHOWN, DAC_OVERRIDE,
  FOWNER, KILL, SETGID and SETUID (``SUPERVISOR_CAPS``): every command, the shell
  and the file ops of ``spec.user`` drop to that user's uid/gid, so the agent's
  processes have no capabilities and cannot signal, trace or write to the
  supervisor or its channel. Hardened by default: ``cap_drop=ALL`` (but those six
  for root), ``no-new-privileges``, read-only root; ``/tmp`` and the workspace
  (``spec.workdir``, owned by the user) are labelled tmpfs-backed volumes
  (size-capped, memory charged to the container, reachable by
  ``put_archive``/``get_archive`` even while paused), pids/memory (swap equal)/CPU
  limits, ``fsize``/``nofile``/``core`` ulimits, ``init``, private IPC, no Docker
  socket, ``network_mode=none`` watched by the network sentinel (a sidecar in the
  box's network namespace, see :mod:`hazmat.sandbox.docker.network`). ``spec.hardening``
  may loosen the root file system, no-new-privileges and add capabilities;
  :meth:`DockerSandbox.info` records it.
- with ``network: internal`` or any ``services``: a per-sandbox ``internal`` bridge
  network (no route out) whose host side has no IPv4 address (``inhibit_ipv4``), so
  not even the host's own services are reachable through it; the box is ``agent``
  on it and each service is reachable by its name.
- with ``network: allowlist``: that internal network plus the allowlist gateway
  (:mod:`hazmat.sandbox.docker.network`), the only way out, for ``spec.allow_hosts`` only.
- services: one container each (hardened the same way, except that root in a service
  keeps a server's capabilities: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETUID,
  SETGID, NET_BIND_SERVICE; and the root stays writable unless asked), from the
  sandbox image, ``image:`` or a ``build:`` folder (see :func:`build_service_image`),
  health-checked (bounded) before :meth:`start` returns.

The channel: the box is created with stdin open and no TTY and attached *before* it
starts; the attach socket carries the supervisor's JSON lines (stdout frames of the
8-byte multiplexed stream are demultiplexed here). ``exec`` of the agent therefore
costs one write and one read on an open socket, no ``docker exec``.

Other users and services: ``exec(user="root")`` (scorer, setup) runs over the box
channel without dropping uid; ``exec(service=...)`` uses a supervisor started lazily
with one ``docker exec`` per (service, user) and kept open (its socket is the exec's
hijacked stream), so their timeouts also kill the whole process tree. Root in the box
has only ``SUPERVISOR_CAPS`` (it owns root's files); ``hardening.cap_add`` gives it
more, recorded in :meth:`info`.

Files (``spec.files``, with modes and owners): paths in the volumes (``/tmp`` and the
workspace) are put with ``put_archive`` right after start; other paths are put into
the container before it starts (writable root) or, with a read-only root, into a
per-episode image committed from a never-started container (removed at stop). The
daemon sets owners, so no capability is needed. Setup commands (``spec.setup``) then
run in the live box as root (through the root supervisor, killed as a tree on
timeout), before the agent's first command; with a read-only root they can write
only under ``/tmp`` and the workspace, and without ``cap_add`` they cannot chown:
tasks that modify the system loosen ``hardening`` (read_only_root, cap_add).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import json
import re
import shlex
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import structlog

from hazmat.errors import (
    SandboxClosedError,
    SandboxError,
    SandboxStartError,
)
from hazmat.sandbox.base import (
    Attachable,
    Detachable,
    ExecResult,
    FileSpec,
    Freezable,
    Poolable,
    SandboxSpec,
    ServiceSpec,
    SnapshotInfo,
)
from hazmat.sandbox.channel import Channel, ChannelSandbox, Route, supervisor_source
from hazmat.sandbox.docker.image import build_service_image, docker_client, resolve_image
from hazmat.sandbox.docker.network import (
    create_sentinel,
    make_egress_network,
    start_gateway,
    start_sentinel,
)
from hazmat.sandbox.docker.stream import MuxStream as _MuxStream
from hazmat.sandbox.netwatch import NetworkSentinel

__all__ = ["DockerSandbox", "sandbox_labels"]

log = structlog.get_logger("hazmat.sandbox.docker")

SUPERVISOR_IN_IMAGE = "/opt/hazmat/supervisor.py"
BOX_ALIAS = "agent"
HEALTH_TIMEOUT = 60.0
"""Seconds a service may take to pass its health check."""
SNAPSHOT_CAP = 256 * 1024 * 1024
SUPERVISOR_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID")
"""What root in the box keeps so its supervisor can run the agent's commands as the
agent and kill them: the agent's processes (uid 1000, no-new-privileges) have none."""
SERVICE_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETUID",
    "SETGID",
    "NET_BIND_SERVICE",
)
_GATE = "/tmp/.hazmat-go"
_GATE_SCRIPT = f'while [ ! -e {_GATE} ]; do sleep 0.05; done; exec "$@"'

_LIVE: dict[str, DockerSandbox] = {}
_LIVE_LOCK = threading.Lock()


def sandbox_labels(
    run_id: str, episode_id: str, extra: dict[str, str] | None = None, sandbox_id: str | None = None
) -> dict[str, str]:
    """The labels every container, network and volume of a sandbox carries."""
    labels = dict(extra or {})
    labels.update(
        {
            "hazmat": "1",
            "hazmat.run": run_id,
            "hazmat.episode": episode_id,
            "hazmat.backend": "docker",
        }
    )
    if sandbox_id:
        labels["hazmat.sandbox"] = sandbox_id
    return labels


def _slug(text: str, size: int = 24) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.")[:size] or "x"


# plain docker exec (setup, health checks, file placement) ----------------------


def _docker_exec(
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
    totals = [0, 0]
    try:
        if stdin is not None:
            sock.sendall(stdin)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1.0)
        buf = bytearray()
        deadline = started + timeout + 10.0
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                size = int.from_bytes(buf[4:8], "big")
                if len(buf) < 8 + size:
                    break
                target, idx = (err, 1) if buf[0] == 2 else (out, 0)
                totals[idx] += size
                room = cap - len(target)
                if room > 0:
                    target += buf[8 : 8 + min(size, room)]
                del buf[: 8 + size]
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
        truncated=totals[0] > cap or totals[1] > cap,
        stdout_total=totals[0],
        stderr_total=totals[1],
    )


# files -------------------------------------------------------------------------


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _files_tar(
    files: dict[str, FileSpec], ids: Callable[[str], tuple[int, int]], root: str
) -> bytes:
    """A tar of ``files`` (absolute paths under ``root``) with names relative to ``root``.

    Below a mount root, missing parent folders get entries owned like the file, so the
    owner can write next to it; at ``/`` parents are left to the existing tree.
    """
    buf = io.BytesIO()
    now = int(time.time())
    base = root.rstrip("/")
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        made: set[str] = set()
        for path in sorted(files):
            spec = files[path]
            uid, gid = ids(spec.owner)
            rel = path[len(base) :].lstrip("/")
            if base:
                parts = rel.split("/")[:-1]
                for i in range(len(parts)):
                    folder = "/".join(parts[: i + 1])
                    if folder in made:
                        continue
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.uid, info.gid, info.mtime = (
                        tarfile.DIRTYPE,
                        0o755,
                        uid,
                        gid,
                        now,
                    )
                    tar.addfile(info)
            data = spec.content.encode()
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.uid, info.gid, info.mtime = (
                len(data),
                spec.mode,
                uid,
                gid,
                now,
            )
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _command_argv(command: list[str] | str | None) -> list[str] | None:
    if command is None:
        return None
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return list(command)


# the backend -------------------------------------------------------------------


class DockerSandbox(ChannelSandbox, Poolable, Freezable, Detachable, Attachable):
    """A sandbox made of hardened Docker containers (see the module docstring).

    ``start`` raises :class:`~hazmat.errors.BackendUnavailableError` (no daemon),
    :class:`~hazmat.errors.ImageError` (image missing: ``run: hazmat image build``) or
    :class:`~hazmat.errors.SandboxStartError` (setup/health check failed); whatever
    was made is removed first.
    """

    backend: ClassVar[str] = "docker"

    def __init__(
        self, spec: SandboxSpec, *, run_id: str = "adhoc", episode_id: str = "adhoc"
    ) -> None:
        super().__init__(spec, run_id=run_id, episode_id=episode_id)
        self.sandbox_id = uuid.uuid4().hex[:12]
        self.labels = sandbox_labels(run_id, episode_id, spec.labels, self.sandbox_id)
        self._client: Any = None
        self._api: Any = None
        self._box: str | None = None
        self._box_stream: _MuxStream | None = None
        self._channels: dict[tuple[str, str], tuple[Channel, _MuxStream]] = {}
        self._box_channel: tuple[Channel, _MuxStream] | None = None
        self._channel_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._services: dict[str, str] = {}
        self._service_specs: dict[str, ServiceSpec] = {}
        self._containers: list[str] = []
        self._networks: list[str] = []
        self._images: list[str] = []
        self._volumes_made: list[str] = []
        self._box_mounts: list[str] = []
        self._image_labels: dict[str, str] = {}
        self._network: str | None = None
        self._gateway: NetworkSentinel | None = None
        self._gateway_ip: str | None = None
        self._image_id: str | None = None
        self._ids_cache: dict[str, tuple[int, int]] = {}
        self._started = False
        self._stopped = False
        self._start_seconds = 0.0

    # lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Make the box, its network and services; place files; run setup.

        Raises:
            BackendUnavailableError: the Docker daemon cannot be reached.
            ImageError: an image is missing (hint: ``run: hazmat image build``).
            SandboxStartError: a setup command or a health check failed.
            SandboxError: the supervisor did not start.
        """
        if self._started:
            return
        if self.spec.network == "allowlist" and not self.spec.sentinel:
            raise SandboxStartError(
                "network: allowlist needs the network sentinel (sentinel: false was given)"
            )
        t0 = time.monotonic()
        self._started = True
        with _LIVE_LOCK:
            _LIVE[self.sandbox_id] = self
        spec = self.spec
        self._client = await asyncio.to_thread(docker_client)
        self._api = self._client.api
        image = await asyncio.to_thread(resolve_image, self._client, spec.image)
        self._image_id = str(image.id)
        self._image_labels = dict(image.labels or {})
        if spec.network in ("internal", "allowlist") or spec.services:
            await asyncio.to_thread(self._make_network)
        if spec.network == "allowlist":
            await self._start_gateway()
        tasks = [self._start_box()]
        tasks += [self._start_service(name, svc) for name, svc in spec.services.items()]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._start_seconds = time.monotonic() - t0
        log.info(
            "sandbox_started",
            sandbox=self.sandbox_id,
            run=self.run_id,
            episode=self.episode_id,
            box=self._box and self._box[:12],
            services=sorted(self._services),
            seconds=round(self._start_seconds, 3),
        )

    @classmethod
    def poolable(cls, spec: SandboxSpec) -> bool:
        """True when a sandbox started from ``spec`` minus files and setup can take ``spec``
        with :meth:`adopt` (no services, every file under /tmp or the workspace)."""
        roots = ["/tmp", spec.workdir] if spec.workdir else ["/tmp"]
        return not spec.services and all(_under(p, roots) for p in spec.files)

    async def adopt(self, spec: SandboxSpec, *, episode_id: str | None = None) -> None:
        """Turn this started, bare sandbox (a warm-pool member) into one for ``spec``.

        ``spec`` must equal this sandbox's spec but for ``files``, ``setup`` and
        ``labels``, and be :meth:`poolable`. Places the files and runs the setup
        commands, as :meth:`start` would have.

        Raises:
            SandboxError: ``spec`` does not fit this sandbox.
            SandboxStartError: a setup command failed.
        """
        self._check_open()
        bare = spec.model_copy(update={"files": {}, "setup": [], "labels": self.spec.labels})
        if bare != self.spec or not self.poolable(spec):
            raise SandboxError(f"sandbox {self.sandbox_id} cannot take this spec")
        self.spec = spec
        if episode_id:
            self.episode_id = episode_id
        if spec.files:
            await asyncio.to_thread(
                self._put_into_mounts, self._box or "", dict(spec.files), self._box_mounts
            )
        channel = self._box_channel[0] if self._box_channel else None
        for cmd in spec.setup:
            if channel is None:
                raise SandboxClosedError(f"sandbox {self.sandbox_id}: the channel closed")
            result = await channel.exec(
                ["/bin/sh", "-c", cmd], timeout=spec.limits.exec_timeout, cap=1 << 20, cwd="/"
            )
            self._check_setup(result, cmd, "box")

    def _make_network(self) -> None:
        name = f"hazmat-{_slug(self.episode_id, 20)}-{self.sandbox_id}"
        net = self._api.create_network(
            name,
            driver="bridge",
            internal=True,
            labels=self.labels,
            check_duplicate=True,
            # No IPv4 address on the host side of the bridge: without it, an internal
            # network's "gateway" would still reach every host service bound to 0.0.0.0.
            options={
                "com.docker.network.bridge.enable_ip_masquerade": "false",
                "com.docker.network.bridge.inhibit_ipv4": "true",
            },
        )
        self._networks.append(net["Id"])
        self._network = name

    async def _start_gateway(self) -> None:
        assert self._network is not None
        egress = await asyncio.to_thread(
            make_egress_network, self._api, f"{self._network}-egress", self.labels, self._networks
        )
        self._gateway, self._gateway_ip = await start_gateway(
            self._api,
            image=str(self._image_id),
            internal=self._network,
            egress=egress,
            labels=self.labels,
            made=self._containers,
            allow=list(self.spec.allow_hosts),
        )

    async def _start_sentinel(self, made: asyncio.Future[str]) -> None:
        # shielded: a cancelled start must still let the creation finish, so the
        # container it makes is known and removed
        cid = await asyncio.shield(made)
        self.sentinel = await start_sentinel(
            self._api, cid, allow=list(self.spec.allow_hosts), gateway=self._gateway_ip
        )

    async def network_events(self) -> list[dict[str, Any]] | None:
        """The sentinel's events since the previous call, plus the allowlist gateway's.

        Raises:
            SandboxError: a sentinel went away or did not answer.
        """
        if self.sentinel is None:
            return None
        events = await self.sentinel.drain()
        if self._gateway is not None:
            extra = await self._gateway.drain()
            self.sentinel.keep(extra)
            events += extra
        return events

    def _host_config(
        self,
        *,
        read_only: bool,
        nnp: bool,
        cap_add: list[str],
        mounts: list[Any],
        dns: list[str] | None = None,
    ) -> dict[str, Any]:
        import docker.types

        lim = self.spec.limits
        fsize = lim.file_size_mb * 1024 * 1024
        return dict(
            self._api.create_host_config(
                cap_drop=["ALL"],
                cap_add=cap_add or None,
                security_opt=["no-new-privileges:true"] if nnp else None,
                read_only=read_only,
                mounts=mounts,
                pids_limit=lim.pids,
                mem_limit=f"{lim.memory_mb}m",
                memswap_limit=f"{lim.memory_mb}m",
                nano_cpus=int(lim.cpus * 1e9),
                ulimits=[
                    docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize),
                    docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
                    docker.types.Ulimit(name="core", soft=0, hard=0),
                ],
                init=True,
                ipc_mode="private",
                network_mode=self._network or "none",
                oom_score_adj=500,
                dns=dns,
                dns_opt=["attempts:1", "timeout:2"] if dns else None,
            )
        )

    def _networking(self, alias: str) -> Any:
        import docker.types

        if self._network is None:
            return None
        return docker.types.NetworkingConfig(
            {self._network: docker.types.EndpointConfig(self._api._version, aliases=[alias])}
        )

    def _volumes(self, role: str, mounts: dict[str, tuple[int, int, int]]) -> list[Any]:
        """Make one tmpfs-backed, size-capped, labelled volume per mount point."""
        import docker.types

        size = self.spec.limits.memory_mb
        out = []
        for i, (target, (uid, gid, mode)) in enumerate(sorted(mounts.items())):
            name = f"hazmat-{self.sandbox_id}-{_slug(role, 20)}-{i}"
            self._api.create_volume(
                name,
                driver="local",
                labels={**self.labels, "hazmat.mount": target},
                driver_opts={
                    "type": "tmpfs",
                    "device": "tmpfs",
                    "o": f"size={size}m,uid={uid},gid={gid},mode={mode:o},nosuid,nodev",
                },
            )
            self._volumes_made.append(name)
            out.append(docker.types.Mount(target, name, type="volume", no_copy=True))
        return out

    def _user_ids(self, user: str) -> tuple[int, int]:
        """uid/gid of ``user`` in the sandbox image (``agent`` is 1000:1000)."""
        if user in self._ids_cache:
            return self._ids_cache[user]
        ids: tuple[int, int] | None = None
        agent_uid = self._image_labels.get("hazmat.agent_uid", "")
        if user == "agent" and agent_uid.isdigit():
            ids = (int(agent_uid), int(agent_uid))
        elif user == "root":
            ids = (0, 0)
        elif re.fullmatch(r"\d+(:\d+)?", user):
            uid, _, gid = user.partition(":")
            ids = (int(uid), int(gid or uid))
        else:
            ids = self._passwd_lookup(user)
        self._ids_cache[user] = ids
        return ids

    def _passwd_lookup(self, user: str) -> tuple[int, int]:
        cid = self._api.create_container(
            self._image_id, command=["true"], labels=self.labels, network_disabled=True
        )["Id"]
        try:
            stream, _ = self._api.get_archive(cid, "/etc/passwd")
            data = b"".join(stream)
        finally:
            self._api.remove_container(cid, force=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            text = member.read().decode(errors="replace") if member else ""
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) >= 4 and parts[0] == user:
                return int(parts[2]), int(parts[3])
        raise SandboxStartError(f"user {user!r} does not exist in the image {self.spec.image}")

    async def _start_box(self) -> None:
        spec = self.spec
        hard = spec.hardening
        uid, gid = await asyncio.to_thread(self._user_ids, spec.user)
        mount_points = {"/tmp": (0, 0, 0o1777)}
        if spec.workdir and spec.workdir != "/tmp":
            mount_points[spec.workdir] = (uid, gid, 0o755)
        self._box_mounts = sorted(mount_points, key=len, reverse=True)
        late = {p: f for p, f in spec.files.items() if _under(p, self._box_mounts)}
        early = {p: f for p, f in spec.files.items() if p not in late}
        image = self._image_id
        early_tar = b""
        if early:
            early_tar = await asyncio.to_thread(_files_tar, early, self._user_ids, "/")
            if hard.read_only_root:
                image = await asyncio.to_thread(self._commit_with_files, early_tar)
                early_tar = b""
        mounts = await asyncio.to_thread(self._volumes, "box", mount_points)
        env = {
            "HOME": spec.workdir,
            "USER": spec.user,
            "LANG": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **spec.env,
        }
        host_config = self._host_config(
            read_only=hard.read_only_root,
            nnp=hard.no_new_privileges,
            cap_add=sorted(set(hard.cap_add) | set(SUPERVISOR_CAPS)),
            mounts=mounts,
            dns=["127.0.0.1"] if spec.sentinel else None,
        )
        cid = await asyncio.to_thread(
            self._create,
            image,
            ["python3", "-I", "-S", "-u", SUPERVISOR_IN_IMAGE],
            "0:0",
            spec.workdir,
            {**env, "HAZMAT_STATE_DIR": "/tmp/.hazmat"},
            host_config,
            BOX_ALIAS,
            None,
            {"hazmat.role": "box"},
        )
        self._box = cid
        # The sentinel's container is made while the box starts (it joins the box's
        # network namespace, so it starts after the box).
        made = (
            asyncio.ensure_future(
                asyncio.to_thread(
                    create_sentinel,
                    self._api,
                    image=str(self._image_id),
                    box=cid,
                    labels=self.labels,
                    made=self._containers,
                )
            )
            if spec.sentinel
            else None
        )
        try:
            await self._run_box(cid, early_tar, made, late)
        except BaseException:
            if made is not None:
                with contextlib.suppress(BaseException):
                    await made
            raise

    async def _run_box(
        self,
        cid: str,
        early_tar: bytes,
        made: asyncio.Future[str] | None,
        late: dict[str, FileSpec],
    ) -> None:
        if early_tar:
            await asyncio.to_thread(self._api.put_archive, cid, "/", early_tar)
        raw = await asyncio.to_thread(
            self._api.attach_socket, cid, {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        stream = _MuxStream(raw, f"box {cid[:12]}")
        self._box_stream = stream
        await asyncio.to_thread(self._api.start, cid)
        channel = Channel(stream.send, stream.stdout, name=f"sandbox {self.sandbox_id}")
        try:
            await channel.start(timeout=30.0)
        except SandboxError as exc:
            logs = await asyncio.to_thread(self._logs, cid)
            raise SandboxStartError(f"the sandbox supervisor did not start: {exc} {logs}") from None
        self._box_channel = (channel, stream)
        # The sentinel starts alongside file placement and setup; the agent's first
        # command comes after both.
        watch = asyncio.ensure_future(self._start_sentinel(made)) if made is not None else None
        try:
            await self._place_and_setup(cid, channel, late)
        except BaseException:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(BaseException):
                    await watch
            raise
        if watch is not None:
            await watch

    async def _place_and_setup(self, cid: str, channel: Channel, late: dict[str, FileSpec]) -> None:
        spec = self.spec
        if late:
            await asyncio.to_thread(self._put_into_mounts, cid, late, self._box_mounts)
        for cmd in spec.setup:
            result = await channel.exec(
                ["/bin/sh", "-c", cmd], timeout=spec.limits.exec_timeout, cap=1 << 20, cwd="/"
            )
            self._check_setup(result, cmd, "box")

    def _create(
        self,
        image: str | None,
        command: list[str] | None,
        user: str,
        workdir: str | None,
        env: dict[str, str],
        host_config: dict[str, Any],
        alias: str,
        entrypoint: list[str] | None,
        extra: dict[str, str],
    ) -> str:
        labels = {**self.labels, **extra}
        cid = str(
            self._api.create_container(
                image,
                command=command,
                user=user,
                working_dir=workdir,
                environment=env,
                labels=labels,
                stdin_open=True,
                tty=False,
                host_config=host_config,
                networking_config=self._networking(alias),
                hostname=alias,
                entrypoint=entrypoint,
            )["Id"]
        )
        self._containers.append(cid)
        return cid

    def _commit_with_files(self, data: bytes) -> str:
        """A per-episode image: the sandbox image plus ``data`` (read-only root case)."""
        cid = self._api.create_container(
            self._image_id, command=["true"], labels=self.labels, network_disabled=True
        )["Id"]
        self._containers.append(cid)
        try:
            self._api.put_archive(cid, "/", data)
            label_args = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.labels.items())
            result = self._api.commit(
                cid,
                repository="hazmat-episode",
                tag=self.sandbox_id,
                changes=[f"LABEL {label_args}"],
            )
        finally:
            self._api.remove_container(cid, force=True)
            self._containers.remove(cid)
        image_id = str(result["Id"])
        self._images.append(image_id)
        return image_id

    def _logs(self, cid: str) -> str:
        try:
            text = self._api.logs(cid, stdout=False, stderr=True, tail=20)
            return str(text.decode(errors="replace")).strip()[-1000:]
        except Exception:
            return ""

    def _put_into_mounts(self, cid: str, files: dict[str, FileSpec], roots: list[str]) -> None:
        """``put_archive`` files into the volume mounted at each root (running container)."""
        groups: dict[str, dict[str, FileSpec]] = {}
        for path, spec in files.items():
            root = next(r for r in sorted(roots, key=len, reverse=True) if _under(path, [r]))
            groups.setdefault(root, {})[path] = spec
        for root, mine in groups.items():
            self._api.put_archive(cid, root, _files_tar(mine, self._user_ids, root))

    def _check_setup(self, result: ExecResult, cmd: str, where: str) -> None:
        log.info(
            "sandbox_setup",
            sandbox=self.sandbox_id,
            where=where,
            command=cmd,
            exit_code=result.exit_code,
        )
        if not result.ok:
            detail = (result.stderr_text or result.stdout_text).strip()[-500:]
            why = "timed out" if result.timed_out else f"exit {result.exit_code}"
            raise SandboxStartError(f"{where}: setup command failed ({why}): {cmd}: {detail}")

    async def _service_exec(self, cid: str, cmd: str, timeout: float) -> ExecResult:
        return await asyncio.to_thread(
            _docker_exec, self._api, cid, ["/bin/sh", "-c", cmd], timeout=timeout, workdir="/"
        )

    async def _start_service(self, name: str, svc: ServiceSpec) -> None:
        if svc.build:
            image = await asyncio.to_thread(build_service_image, svc.build, client=self._client)
        elif svc.image:
            image = str((await asyncio.to_thread(resolve_image, self._client, svc.image)).id)
        else:
            image = self._image_id or ""
        info = await asyncio.to_thread(self._api.inspect_image, image)
        config = info.get("Config") or {}
        original = _command_argv(svc.command)
        entry = list(config.get("Entrypoint") or [])
        if original is None:
            original = list(config.get("Cmd") or [])
        else:
            entry = []
        argv = entry + original
        if not argv:
            raise SandboxStartError(f"service {name}: no command (set command: in the task)")
        late = {p: f for p, f in svc.files.items() if _under(p, ["/tmp"])}
        early = {p: f for p, f in svc.files.items() if p not in late}
        gated = bool(svc.setup or late)
        mounts = await asyncio.to_thread(self._volumes, f"svc-{name}", {"/tmp": (0, 0, 0o1777)})
        host_config = self._host_config(
            read_only=svc.read_only_root, nnp=True, cap_add=list(SERVICE_CAPS), mounts=mounts
        )
        entrypoint = ["/bin/sh", "-c", _GATE_SCRIPT, "sh"] if gated else argv[:1]
        command = argv if gated else argv[1:]
        cid = await asyncio.to_thread(
            self._create,
            image,
            command,
            svc.user,
            svc.workdir,
            dict(svc.env),
            host_config,
            name,
            entrypoint,
            {"hazmat.role": "service", "hazmat.service": name},
        )
        self._services[name] = cid
        self._service_specs[name] = svc
        if early:
            data = await asyncio.to_thread(_files_tar, early, self._user_ids, "/")
            try:
                await asyncio.to_thread(self._api.put_archive, cid, "/", data)
            except Exception as exc:
                raise SandboxStartError(f"service {name}: placing files failed: {exc}") from None
        await asyncio.to_thread(self._api.start, cid)
        if late:
            await asyncio.to_thread(self._put_into_mounts, cid, late, ["/tmp"])
        for cmd in svc.setup:
            result = await self._service_exec(cid, cmd, self.spec.limits.exec_timeout)
            self._check_setup(result, cmd, f"service {name}")
        if gated:
            result = await self._service_exec(cid, f"touch {_GATE}", 30.0)
            self._check_setup(result, f"touch {_GATE}", f"service {name}")
        if svc.healthcheck:
            await self._wait_healthy(name, cid, svc.healthcheck)

    async def _wait_healthy(self, name: str, cid: str, check: str) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last: ExecResult | None = None
        while time.monotonic() < deadline:
            state = (await asyncio.to_thread(self._api.inspect_container, cid))["State"]
            if not state.get("Running"):
                logs = await asyncio.to_thread(self._logs, cid)
                raise SandboxStartError(
                    f"service {name} exited (code {state.get('ExitCode')}) before it was "
                    f"healthy: {logs}"
                )
            last = await self._service_exec(
                cid, check, min(10.0, max(1.0, deadline - time.monotonic()))
            )
            if last.ok:
                return
            await asyncio.sleep(0.2)
        detail = (last.stderr_text or last.stdout_text).strip()[-300:] if last else ""
        raise SandboxStartError(
            f"service {name}: health check did not pass within {HEALTH_TIMEOUT:.0f}s: "
            f"{check}: {detail}"
        )

    async def stop(self) -> None:
        """Remove every container, network and episode image of this sandbox. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for watcher in (self.sentinel, self._gateway):
            if watcher is not None:
                await watcher.close()
        for channel, stream in list(self._channels.values()):
            await channel.close()
            await stream.close()
        self._channels.clear()
        if self._box_channel is not None:
            await self._box_channel[0].close()
            self._box_channel = None
        if self._box_stream is not None:
            await self._box_stream.close()
        if self._client is not None:
            await asyncio.shield(asyncio.to_thread(self._remove_all))
        with _LIVE_LOCK:
            _LIVE.pop(self.sandbox_id, None)

    def _remove_all(self) -> None:
        """Remove what this sandbox made (tracked ids, then anything with its label)."""
        import docker.errors

        api = self._api
        flt = {"label": [f"hazmat.sandbox={self.sandbox_id}"]}
        with contextlib.suppress(Exception):
            for c in api.containers(all=True, filters=flt):
                if c["Id"] not in self._containers:
                    self._containers.append(c["Id"])
        for cid in self._containers:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                api.remove_container(cid, force=True, v=True)
        self._containers.clear()
        with contextlib.suppress(Exception):
            for n in api.networks(filters=flt):
                if n["Id"] not in self._networks:
                    self._networks.append(n["Id"])
        for nid in self._networks:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                api.remove_network(nid)
        self._networks.clear()
        with contextlib.suppress(Exception):
            for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
                if v["Name"] not in self._volumes_made:
                    self._volumes_made.append(v["Name"])
        for name in self._volumes_made:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                api.remove_volume(name, force=True)
        self._volumes_made.clear()
        for image_id in self._images:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                api.remove_image(image_id, force=True)
        self._images.clear()

    # channels ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._stopped or not self._started or self._box is None:
            raise SandboxClosedError(f"sandbox {self.sandbox_id} is not running")

    async def _channel(self, service: str | None, user: str | None) -> Channel:
        """The supervisor channel for (service, user), starting one lazily via docker exec."""
        self._check_open()
        if service:
            if service not in self._services:
                raise SandboxError(f"no service named {service!r} in this sandbox")
            user = user or self._service_specs[service].user
            cid = self._services[service]
        else:
            user = user or self.spec.user
            cid = self._box or ""
        key = (service or "", user)
        found = self._channels.get(key)
        if found is not None and not found[0].closed:
            return found[0]
        lock = self._channel_locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._channels.get(key)
            if found is not None and not found[0].closed:
                return found[0]
            state_dir = f"/tmp/.hazmat-{_slug(user, 16)}"
            argv = ["python3", "-I", "-S", "-u", "-c", supervisor_source().decode()]
            exec_id = (
                await asyncio.to_thread(
                    self._api.exec_create,
                    cid,
                    argv,
                    stdin=True,
                    user=user,
                    environment={"HAZMAT_STATE_DIR": state_dir},
                )
            )["Id"]
            raw = await asyncio.to_thread(self._api.exec_start, exec_id, socket=True)
            stream = _MuxStream(raw, f"{service or 'box'}:{user}")
            channel = Channel(
                stream.send,
                stream.stdout,
                name=f"sandbox {self.sandbox_id} {service or 'box'} as {user}",
            )
            try:
                await channel.start(timeout=30.0)
            except SandboxError as exc:
                await stream.close()
                raise SandboxError(
                    f"cannot run commands in {service or 'the box'} as {user}: {exc} "
                    f"{stream.stderr_text()}"
                ) from None
            self._channels[key] = (channel, stream)
            return channel

    # commands ------------------------------------------------------------------

    async def _route(self, user: str | None, service: str | None) -> Route:
        """The agent's box goes over the attach socket (dropping to the user's ids); a
        service over its own supervisor per user, started on first use.

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: no such service.
        """
        if service:
            return Route(await self._channel(service, user))
        self._check_open()
        if self._box_channel is None or self._box_channel[0].closed:
            raise SandboxClosedError(f"sandbox {self.sandbox_id}: the channel closed")
        uid, gid = await asyncio.to_thread(self._user_ids, user or self.spec.user)
        if uid == 0:
            return Route(self._box_channel[0])
        return Route(self._box_channel[0], uid, gid)

    async def detach(self) -> str:
        """Let the sandbox outlive this process: close our sockets, keep its containers.

        The containers keep running (or stay paused) and keep their labels, so
        ``hazmat sandbox shell --attach ID`` can open a shell in the box and
        ``hazmat cleanup --run RUN`` removes them. After this, :meth:`stop` does
        nothing. Returns the box container id.

        Raises:
            SandboxClosedError: the sandbox is not running.
        """
        self._check_open()
        box = self._box or ""
        with _LIVE_LOCK:
            _LIVE.pop(self.sandbox_id, None)
        self._stopped = True
        for channel, stream in list(self._channels.values()):
            await channel.close()
            await stream.close()
        self._channels.clear()
        if self._box_channel is not None:
            await self._box_channel[0].close()
            self._box_channel = None
        if self._box_stream is not None:
            await self._box_stream.close()
        return box

    # investigation -------------------------------------------------------------

    async def freeze(self) -> None:
        """Pause every container of the sandbox (``docker pause``)."""
        if self._api is None or self._stopped:
            return
        for cid in [self._box, *self._services.values()]:
            if cid:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._api.pause, cid)

    async def processes(self) -> list[dict[str, Any]] | None:
        """The box's processes from ``docker top`` (works on a paused box)."""
        if self._api is None or self._box is None or self._stopped:
            return None
        top = await asyncio.to_thread(self._api.top, self._box, "-eo pid,ppid,uid,stat,args")
        uid, _gid = await asyncio.to_thread(self._user_ids, self.spec.user)
        names = {"0": "root", str(uid): self.spec.user}
        out = []
        for row in top.get("Processes") or []:
            if len(row) >= 5:
                out.append(
                    {
                        "pid": int(row[0]),
                        "ppid": int(row[1]),
                        "user": names.get(row[2], row[2]),
                        "state": row[3],
                        "cmdline": row[4][:2000],
                    }
                )
        return out

    async def snapshot(self, dest: Path) -> SnapshotInfo:
        """Save what changed in the box since start: ``changes.json`` + ``changes.tar``.

        Changes of the container layer come from ``docker diff`` + ``get_archive``; the
        volumes (``/tmp``, the workspace) are archived whole. Works on a frozen box.
        """
        self._check_open()
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        info = await asyncio.to_thread(self._snapshot_sync, dest)
        return info

    def _snapshot_sync(self, dest: Path) -> SnapshotInfo:
        api, cid = self._api, self._box
        kinds = {0: "changed", 1: "added", 2: "deleted"}
        diff = api.diff(cid) or []
        entries = [
            {"path": d["Path"], "kind": kinds.get(d["Kind"], str(d["Kind"]))}
            for d in diff
            if not _under(d["Path"], self._box_mounts)
        ]
        changed: list[str] = []
        tar_path = dest / "changes.tar"
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as out:
            taken: list[str] = []
            for entry in sorted(entries, key=lambda e: e["path"]):
                path = entry["path"]
                if entry["kind"] == "deleted":
                    changed.append("-" + path)
                    continue
                if _under(path, taken):
                    changed.append(path)
                    continue
                try:
                    stream, stat = api.get_archive(cid, path)
                except Exception:
                    continue
                is_dir = bool(int(stat.get("mode", 0)) & (1 << 31))
                if is_dir and entry["kind"] == "changed":
                    for _ in stream:
                        pass
                    continue
                changed.append(path)
                taken.append(path)
                self._copy_members(out, b"".join(stream), str(Path(path).parent))
            truncated = False
            for root in self._box_mounts:
                try:
                    stream, _ = api.get_archive(cid, root)
                except Exception:
                    continue
                data = bytearray()
                for chunk in stream:
                    if len(data) < SNAPSHOT_CAP:
                        data += chunk
                    else:
                        truncated = True
                names = self._copy_members(out, bytes(data), str(Path(root).parent))
                changed += [n for n in names if n != root]
        meta = {
            "sandbox": self.sandbox_id,
            "container": cid,
            "image": self.spec.image,
            "image_id": self._image_id,
            "diff": entries,
            "changed": changed,
            "truncated": truncated,
        }
        (dest / "changes.json").write_text(json.dumps(meta, indent=2))
        return SnapshotInfo(path=dest, changed=changed)

    @staticmethod
    def _copy_members(out: tarfile.TarFile, data: bytes, parent: str) -> list[str]:
        names: list[str] = []
        with (
            contextlib.suppress(tarfile.TarError),
            tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as src,
        ):
            for member in src:
                name = f"{parent.rstrip('/')}/{member.name}".lstrip("/")
                fobj = src.extractfile(member) if member.isfile() else None
                member.name = name
                out.addfile(member, fobj)
                if not member.isdir():
                    names.append("/" + name)
        return names

    @classmethod
    def cleanup(cls, run_id: str | None = None) -> dict[str, int]:
        """Remove every container, network, volume and episode image labelled ``hazmat=1``
        (of ``run_id`` only, when given); see :func:`hazmat.sandbox.docker.ledger.cleanup`.

        Raises:
            BackendUnavailableError: the Docker daemon cannot be reached.
        """
        from hazmat.sandbox.docker.ledger import cleanup

        return cleanup(run_id)

    @classmethod
    def attach(cls, handle: str, *, user: str | None = None) -> int:
        """Open an interactive shell in a kept box container (``docker exec``); see
        :func:`hazmat.sandbox.docker.attach.attach`."""
        from hazmat.sandbox.docker.attach import attach

        return attach(handle, user=user)

    def info(self) -> dict[str, Any]:
        """Facts for the ``sandbox_ready`` event: ids, image, hardening, network, services."""
        hard = self.spec.hardening
        return {
            "backend": self.backend,
            "sandbox": self.sandbox_id,
            "image": self.spec.image,
            "image_id": self._image_id,
            "container": self._box,
            "network": self._network or "none",
            "services": {k: v[:12] for k, v in self._services.items()},
            "hardening": {
                "cap_drop": ["ALL"],
                "cap_add": list(hard.cap_add),
                "supervisor_caps": list(SUPERVISOR_CAPS),
                "read_only_root": hard.read_only_root,
                "no_new_privileges": hard.no_new_privileges,
                "loosened": hard.model_dump() != type(hard)().model_dump(),
            },
            "start_seconds": round(self._start_seconds, 3),
            "sentinel": self.sentinel.setup if self.sentinel else "off",
            "gateway": self._gateway_ip,
        }


def _remove_live_at_exit() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for sandbox in live:
        with contextlib.suppress(Exception):
            if sandbox._api is not None:
                sandbox._remove_all()


atexit.register(_remove_live_at_exit)
