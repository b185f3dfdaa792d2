"""The Docker backend: a hardened container per sandbox, one persistent channel into it.

What a sandbox is made of (everything labelled ``hazmat=1``, ``hazmat.run``,
``hazmat.episode``, ``hazmat.backend=docker``, ``hazmat.sandbox`` plus ``spec.labels``):

- the agent's *box*: a container from ``spec.image`` whose main process is the
  supervisor (``supervisor.py``) running as root with only CHOWN, DAC_OVERRIDE,
  FOWNER, KILL, SETGID and SETUID (``SUPERVISOR_CAPS``): every command, the shell
  and the file ops of ``spec.user`` drop to that user's uid/gid, so the agent's
  processes have no capabilities and cannot signal, trace or write to the
  supervisor or its channel. Hardened by default (:mod:`.config`): ``cap_drop=ALL``
  (but those six for root), ``no-new-privileges``, read-only root; ``/tmp`` and the
  workspace are size-capped tmpfs volumes (reachable by ``put_archive`` and
  ``get_archive`` even while paused), limits and ulimits, ``init``, private IPC, no
  Docker socket, ``network_mode=none`` watched by the network sentinel (a host process or a
  sidecar in the box's network namespace, see :mod:`hazmat.sandbox.docker.network`).
  ``spec.hardening`` may loosen the root, no-new-privileges and add capabilities.
- with ``network: internal`` or any ``services``: a per-sandbox ``internal`` bridge
  network (no route out) whose host side has no IPv4 address (``inhibit_ipv4``), so
  not even the host's own services are reachable through it; the box is ``agent``
  on it and each service is reachable by its name.
- with ``network: allowlist``: that internal network plus the allowlist gateway
  (:mod:`hazmat.sandbox.docker.network`), the only way out, for ``spec.allow_hosts`` only.
- services: one container each (see :mod:`hazmat.sandbox.docker.services`),
  health-checked (bounded) before :meth:`start` returns.

The channel: the box is created with stdin open and no TTY and attached *before* it
starts; the attach socket carries the supervisor's JSON lines (stdout frames of the
8-byte multiplexed stream are demultiplexed here). ``exec`` of the agent therefore
costs one write and one read on an open socket, no ``docker exec``.

Other users and services: ``exec(user="root")`` (scorer, setup) runs over the box
channel without dropping uid; ``exec(service=...)`` goes to a supervisor per (service,
user) (see services). Root in the box has only ``SUPERVISOR_CAPS`` (it owns root's
files); ``hardening.cap_add`` gives it more, recorded in :meth:`info`.

Files (``spec.files``): see :mod:`hazmat.sandbox.docker.files`; what is made and how
it is removed: :mod:`hazmat.sandbox.docker.ledger`. Setup commands (``spec.setup``)
run in the live box as root (through the root supervisor, killed as a tree on
timeout), before the agent's first command; with a read-only root they can write
only under ``/tmp`` and the workspace, and without ``cap_add`` they cannot chown:
tasks that modify the system loosen ``hardening`` (read_only_root, cap_add).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from asyncio import Future
from pathlib import Path
from typing import Any, ClassVar

import structlog

from hazmat.errors import SandboxClosedError, SandboxError, SandboxStartError
from hazmat.sandbox.base import (
    Attachable,
    Detachable,
    FileSpec,
    Freezable,
    Poolable,
    SandboxSpec,
    ServiceSpec,
    SnapshotInfo,
)
from hazmat.sandbox.channel import Channel, ChannelSandbox, Route
from hazmat.sandbox.docker.config import (
    BOX_ALIAS,
    SUPERVISOR_CAPS,
    SUPERVISOR_IN_IMAGE,
    Maker,
    sandbox_labels,
)
from hazmat.sandbox.docker.files import files_tar, put_into_mounts, under
from hazmat.sandbox.docker.image import docker_client, resolve_image
from hazmat.sandbox.docker.ledger import Ledger, cleanup
from hazmat.sandbox.docker.limits import DockerLimits
from hazmat.sandbox.docker.network import (
    box_pid,
    create_sentinel,
    make_egress_network,
    sentinel_mode,
    start_gateway,
    start_sentinel,
)
from hazmat.sandbox.docker.services import check_setup, open_channel, start_service
from hazmat.sandbox.docker.snapshot import save_snapshot, top
from hazmat.sandbox.docker.stream import MuxStream
from hazmat.sandbox.netwatch import NetworkSentinel, spawn_sentinel
from hazmat.sandbox.rootfs import environment_of_image

__all__ = ["DockerSandbox", "sandbox_labels"]

log = structlog.get_logger("hazmat.sandbox.docker")

Spawned = tuple[NetworkSentinel, asyncio.subprocess.Process]


class DockerSandbox(ChannelSandbox, Poolable, Freezable, Detachable, Attachable, DockerLimits):
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
        self._made = Ledger(self.sandbox_id)
        self._make: Maker | None = None
        self._client: Any = None
        self._api: Any = None
        self._box: str | None = None
        self._box_stream: MuxStream | None = None
        self._channels: dict[tuple[str, str], tuple[Channel, MuxStream]] = {}
        self._box_channel: Channel | None = None
        self._channel_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._services: dict[str, str] = {}
        self._service_specs: dict[str, ServiceSpec] = {}
        self._box_mounts: list[str] = []
        self._gateway: NetworkSentinel | None = None
        self._sentinel_proc: asyncio.subprocess.Process | None = None
        self._gateway_ip: str | None = None
        self._image_id: str | None = None
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
        spec = self.spec
        self._client = await asyncio.to_thread(docker_client)
        self._api = self._client.api
        self._made.open(self._api)
        image = await asyncio.to_thread(resolve_image, self._client, spec.image)
        self._image_id = str(image.id)
        self._make = make = Maker(
            self._api,
            sandbox_id=self.sandbox_id,
            labels=self.labels,
            limits=spec.limits,
            ledger=self._made,
            image=spec.image,
            image_id=self._image_id,
            image_labels=dict(image.labels or {}),
        )
        if spec.network in ("internal", "allowlist") or spec.services:
            await asyncio.to_thread(make.make_network, self.episode_id)
        if spec.network == "allowlist":
            await self._start_gateway(make)
        tasks = [self._start_box(make)]
        tasks += [self._start_service(make, name, svc) for name, svc in spec.services.items()]
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
        return not spec.services and all(under(p, roots) for p in spec.files)

    async def adopt(self, spec: SandboxSpec, *, episode_id: str | None = None) -> None:
        """Turn this started, bare sandbox (a warm-pool member) into one for ``spec``.

        ``spec`` must equal this sandbox's spec but for ``files``, ``setup`` and
        ``labels``, and be :meth:`poolable`. Places the files and runs the setup
        commands, as :meth:`start` would have.

        Raises:
            SandboxError: ``spec`` does not fit this sandbox.
            SandboxStartError: a setup command failed.
        """
        make = self._check_open()
        bare = spec.model_copy(update={"files": {}, "setup": [], "labels": self.spec.labels})
        if bare != self.spec or not self.poolable(spec):
            raise SandboxError(f"sandbox {self.sandbox_id} cannot take this spec")
        self.spec = spec
        if episode_id:
            self.episode_id = episode_id
        if self._box_channel is None:
            raise SandboxClosedError(f"sandbox {self.sandbox_id}: the channel closed")
        await self._place_and_setup(make, self._box or "", self._box_channel, dict(spec.files))

    async def _start_gateway(self, make: Maker) -> None:
        assert make.network is not None
        egress = await asyncio.to_thread(
            make_egress_network,
            self._api,
            f"{make.network}-egress",
            self.labels,
            self._made.networks,
        )
        self._gateway, self._gateway_ip = await start_gateway(
            self._api,
            image=str(self._image_id),
            internal=make.network,
            egress=egress,
            labels=self.labels,
            made=self._made.containers,
            allow=list(self.spec.allow_hosts),
        )

    async def _watch(
        self, cid: str, host: Future[Spawned] | None, made: Future[str] | None
    ) -> None:
        """Set up the box's sentinel (see :mod:`hazmat.sandbox.docker.network`): the host
        process started while the box was made, when it can join the box's namespace,
        else a sidecar (made already, or now)."""
        allow, gateway = list(self.spec.allow_hosts), self._gateway_ip
        if host is not None:
            sentinel, self._sentinel_proc = await host
            try:
                pid = await asyncio.to_thread(box_pid, self._api, cid)
                if pid is None:
                    raise SandboxError("the box's process is not visible here")
                await sentinel.join(pid)
                await sentinel.start(mode="netns", allow=allow, gateway=gateway)
                sentinel.setup.update(mode="host", pid=self._sentinel_proc.pid)
                self.sentinel = sentinel
                return
            except (SandboxError, OSError) as exc:
                await sentinel.close()
                log.info("sentinel_sidecar_fallback", sandbox=self.sandbox_id, why=str(exc))
        if made is None:
            made = asyncio.ensure_future(asyncio.to_thread(self._create_sidecar, cid))
        # shielded: a cancelled start must still let the creation finish, so the
        # container it makes is known and removed
        sidecar = await asyncio.shield(made)
        self.sentinel = await start_sentinel(self._api, sidecar, allow=allow, gateway=gateway)
        self.sentinel.setup["mode"] = "sidecar"

    def _create_sidecar(self, cid: str) -> str:
        image = self._make.image_id if self._make else ""
        return create_sentinel(
            self._api, image=image, box=cid, labels=self.labels, made=self._made.containers
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

    async def _start_box(self, make: Maker) -> None:
        spec = self.spec
        hard = spec.hardening
        uid, gid = await asyncio.to_thread(make.user_ids, spec.user)
        mount_points = {"/tmp": (0, 0, 0o1777)}
        if spec.workdir and spec.workdir != "/tmp":
            mount_points[spec.workdir] = (uid, gid, 0o755)
        self._box_mounts = sorted(mount_points, key=len, reverse=True)
        late = {p: f for p, f in spec.files.items() if under(p, self._box_mounts)}
        early = {p: f for p, f in spec.files.items() if p not in late}
        image = make.image_id
        early_tar = b""
        if early:
            early_tar = await asyncio.to_thread(files_tar, early, make.user_ids, "/")
            if hard.read_only_root:
                image = await asyncio.to_thread(make.commit_with_files, early_tar)
                early_tar = b""
        mounts = await asyncio.to_thread(make.volumes, "box", mount_points)
        env = {
            "HOME": spec.workdir,
            "USER": spec.user,
            "LANG": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **spec.env,
        }
        host_config = make.host_config(
            read_only=hard.read_only_root,
            nnp=hard.no_new_privileges,
            cap_add=sorted(set(hard.cap_add) | set(SUPERVISOR_CAPS)),
            mounts=mounts,
            dns=["127.0.0.1"] if spec.sentinel else None,
        )
        cid = await asyncio.to_thread(
            make.create,
            image,
            ["python3", "-I", "-S", "-u", SUPERVISOR_IN_IMAGE],
            user="0:0",
            workdir=spec.workdir,
            env={**env, "HAZMAT_STATE_DIR": "/tmp/.hazmat"},
            host_config=host_config,
            alias=BOX_ALIAS,
            entrypoint=None,
            extra={"hazmat.role": "box"},
        )
        self._box = cid
        # The sentinel is made while the box starts: a host process (ready by the time
        # the box runs) or a sidecar container (it joins the box's network namespace,
        # so it starts after the box).
        mode = sentinel_mode() if spec.sentinel else None
        host = None
        if mode == "host":
            tag = f"docker-{self.sandbox_id}"
            host = asyncio.ensure_future(spawn_sentinel(name=self.episode_id, tag=tag))
        made = (
            asyncio.ensure_future(asyncio.to_thread(self._create_sidecar, cid))
            if mode == "sidecar"
            else None
        )
        try:
            await self._run_box(make, cid, early_tar, host, made, late)
        except BaseException:
            for pending in (host, made):
                if pending is not None:
                    with contextlib.suppress(BaseException):
                        await pending
            raise

    async def _run_box(
        self,
        make: Maker,
        cid: str,
        early_tar: bytes,
        host: Future[Spawned] | None,
        made: Future[str] | None,
        late: dict[str, FileSpec],
    ) -> None:
        if early_tar:
            await asyncio.to_thread(self._api.put_archive, cid, "/", early_tar)
        raw = await asyncio.to_thread(
            self._api.attach_socket, cid, {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        stream = MuxStream(raw, f"box {cid[:12]}")
        self._box_stream = stream
        await asyncio.to_thread(self._api.start, cid)
        # The sentinel is set up while the supervisor starts and files and setup are
        # placed; the agent's first command comes after both.
        watch = (
            asyncio.ensure_future(self._watch(cid, host, made))
            if host is not None or made is not None
            else None
        )
        try:
            channel = Channel(stream.send, stream.stdout, name=f"sandbox {self.sandbox_id}")
            try:
                await channel.start(timeout=30.0)
            except SandboxError as exc:
                logs = await asyncio.to_thread(make.logs, cid)
                raise SandboxStartError(
                    f"the sandbox supervisor did not start: {exc} {logs}"
                ) from None
            self._box_channel = channel
            await self._place_and_setup(make, cid, channel, late)
            if watch is not None:
                await watch
        except BaseException:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(BaseException):
                    await watch
            raise

    async def _place_and_setup(
        self, make: Maker, cid: str, channel: Channel, late: dict[str, FileSpec]
    ) -> None:
        spec = self.spec
        if late:
            await asyncio.to_thread(
                put_into_mounts, self._api, cid, late, self._box_mounts, make.user_ids
            )
        for cmd in spec.setup:
            result = await channel.exec(
                ["/bin/sh", "-c", cmd], timeout=spec.limits.exec_timeout, cap=1 << 20, cwd="/"
            )
            check_setup(self.sandbox_id, result, cmd, "box")

    async def _start_service(self, make: Maker, name: str, svc: ServiceSpec) -> None:
        cid = await start_service(
            make, self._client, name, svc, exec_timeout=self.spec.limits.exec_timeout
        )
        self._services[name] = cid
        self._service_specs[name] = svc

    async def stop(self) -> None:
        """Remove every container, network and episode image of this sandbox. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for watcher in (self.sentinel, self._gateway):
            if watcher is not None:
                await watcher.close()
        proc = self._sentinel_proc
        if proc is not None and proc.returncode is None:  # one that never set up
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5.0)
        await self._close_channels()
        if self._client is not None:
            await asyncio.shield(asyncio.to_thread(self._made.remove_all))
        self._made.close()

    async def _close_channels(self) -> None:
        for channel, stream in list(self._channels.values()):
            await channel.close()
            await stream.close()
        self._channels.clear()
        if self._box_channel is not None:
            await self._box_channel.close()
            self._box_channel = None
        if self._box_stream is not None:
            await self._box_stream.close()

    # channels ------------------------------------------------------------------

    def _check_open(self) -> Maker:
        if self._stopped or not self._started or self._box is None or self._make is None:
            raise SandboxClosedError(f"sandbox {self.sandbox_id} is not running")
        return self._make

    async def _service_channel(self, service: str, user: str | None) -> Channel:
        """The supervisor channel of ``service`` as ``user`` (default: the service's user),
        started on first use (:func:`~hazmat.sandbox.docker.services.open_channel`)."""
        self._check_open()
        if service not in self._services:
            raise SandboxError(f"no service named {service!r} in this sandbox")
        user = user or self._service_specs[service].user
        key = (service, user)
        async with self._channel_locks.setdefault(key, asyncio.Lock()):
            found = self._channels.get(key)
            if found is None or found[0].closed:
                name = f"sandbox {self.sandbox_id} {service}"
                found = await open_channel(self._api, self._services[service], user, name)
                self._channels[key] = found
            return found[0]

    async def _route(self, user: str | None, service: str | None) -> Route:
        """The agent's box goes over the attach socket (dropping to the user's ids); a
        service over its own supervisor per user, started on first use.

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: no such service.
        """
        if service:
            return Route(await self._service_channel(service, user))
        make = self._check_open()
        if self._box_channel is None or self._box_channel.closed:
            raise SandboxClosedError(f"sandbox {self.sandbox_id}: the channel closed")
        uid, gid = await asyncio.to_thread(make.user_ids, user or self.spec.user)
        if uid == 0:
            return Route(self._box_channel)
        return Route(self._box_channel, uid, gid)

    async def detach(self) -> str:
        """Let the sandbox outlive this process: close our sockets, keep its containers.

        The containers keep running (or stay paused) and keep their labels, so
        ``hazmat sandbox shell --attach ID`` can open a shell in the box and
        ``hazmat cleanup --run RUN`` removes them. A host-process sentinel ends here
        (nothing of the sandbox stays in this process), a sidecar when this process
        exits. After this, :meth:`stop` does nothing. Returns the box container id.

        Raises:
            SandboxClosedError: the sandbox is not running.
        """
        self._check_open()
        box = self._box or ""
        self._made.close()
        self._stopped = True
        if self.sentinel is not None and self._sentinel_proc is not None:
            await self.sentinel.close()
        await self._close_channels()
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
        if self._make is None or self._box is None or self._stopped:
            return None
        uid, _gid = await asyncio.to_thread(self._make.user_ids, self.spec.user)
        names = {"0": "root", str(uid): self.spec.user}
        return await asyncio.to_thread(top, self._api, self._box, names)

    async def snapshot(self, dest: Path) -> SnapshotInfo:
        """Save what changed in the box since start: ``changes.json`` + ``changes.tar``
        (see :mod:`hazmat.sandbox.docker.snapshot`). Works on a frozen box.

        Raises:
            SandboxClosedError: the sandbox is not running.
        """
        self._check_open()
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        meta = {"sandbox": self.sandbox_id, "image": self.spec.image, "image_id": self._image_id}
        return await asyncio.to_thread(
            save_snapshot, self._api, self._box or "", dest, self._box_mounts, meta
        )

    @classmethod
    def cleanup(cls, run_id: str | None = None) -> dict[str, int]:
        """Remove every container, network, volume and episode image labelled ``hazmat=1``
        (of ``run_id`` only, when given); see :func:`hazmat.sandbox.docker.ledger.cleanup`.

        Raises:
            BackendUnavailableError: the Docker daemon cannot be reached.
        """
        return cleanup(run_id)

    @classmethod
    def attach(cls, handle: str, *, user: str | None = None) -> int:
        """A shell in a kept box container (:func:`hazmat.sandbox.docker.attach.attach`)."""
        from hazmat.sandbox.docker.attach import attach

        return attach(handle, user=user)

    async def leftovers(self) -> list[str]:
        """Containers, networks and volumes labelled with this sandbox, and its episode
        images, that the daemon still has."""
        left = await asyncio.to_thread(self._made.leftovers) if self._api is not None else []
        proc = self._sentinel_proc
        if proc is not None and proc.returncode is None:
            left.append(f"sentinel process {proc.pid}")
        return left

    def info(self) -> dict[str, Any]:
        """Facts for the ``sandbox_ready`` event: ids, image, hardening, network, services."""
        hard = self.spec.hardening
        return {
            "backend": self.backend,
            "sandbox": self.sandbox_id,
            "image": self.spec.image,
            "image_id": self._image_id,
            "env": environment_of_image(self.spec.image, getattr(self._make, "image_labels", None)),
            "container": self._box,
            "network": (self._make.network if self._make else None) or "none",
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
