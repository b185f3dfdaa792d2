"""How the Docker backend configures what it makes: labels, hardening, limits, volumes,
users. :class:`Maker` makes the containers, volumes and images of one sandbox and
writes each in the sandbox's :class:`~hazmat.sandbox.docker.ledger.Ledger` at once.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
from typing import Any

import structlog

from hazmat.errors import SandboxStartError
from hazmat.sandbox.base import Limits
from hazmat.sandbox.docker.ledger import Ledger
from hazmat.sandbox.seccomp import docker_profile

__all__ = [
    "BOX_ALIAS",
    "SERVICE_CAPS",
    "SUPERVISOR_CAPS",
    "SUPERVISOR_IN_IMAGE",
    "Maker",
    "sandbox_labels",
    "seccomp_options",
    "slug",
    "tmpfs_sizes",
]

log = structlog.get_logger("hazmat.sandbox.docker")

SUPERVISOR_IN_IMAGE = "/opt/hazmat/supervisor.py"
BOX_ALIAS = "agent"
SUPERVISOR_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID")
"""What root in the box keeps so its supervisor can run the agent's commands as the
agent and kill them: the agent's processes (uid 1000, no-new-privileges) have none.

The box runs at ``oom_score_adj`` 500 and the supervisor starts the agent's commands at
1000, so the box's OOM killer takes them first. The agent may lower its own back to 500
(lowering under the box's value would take ``CAP_SYS_RESOURCE``, which daemons in
containers often cannot grant); a supervisor lost to the OOM killer ends the episode
``limit`` (memory), see :mod:`hazmat.sandbox.docker.limits`."""
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


def tmpfs_sizes(memory_mb: int, mounts: int) -> tuple[int, int]:
    """``(MiB of each tmpfs mount, MiB of /dev/shm)`` of a container with ``memory_mb``.

    tmpfs pages are charged to the container's memory limit and cannot be reclaimed
    (no swap), so the mounts together stay below the limit minus a reserve for the
    supervisor and the agent's processes: a quarter of the limit (at least 128 MiB, or
    half of a limit under 256 MiB). ``/dev/shm`` gets an eighth of the rest (at most
    64 MiB, Docker's default); the ``mounts`` tmpfs mounts share what remains.
    """
    reserve = max(memory_mb // 4, min(128, memory_mb // 2))
    budget = memory_mb - reserve
    shm = max(1, min(64, budget // 8))
    return max(1, (budget - shm) // max(1, mounts)), shm


_SECCOMP: dict[str, bool] = {}


def seccomp_options(api: Any) -> list[str]:
    """``["seccomp=<hazmat's profile>"]`` (:mod:`hazmat.sandbox.seccomp`), or nothing when
    the daemon has no seccomp at all (then it applies no profile of its own either; logged).
    Asks the daemon once per process."""
    key = str(getattr(api, "base_url", ""))
    if key not in _SECCOMP:
        try:
            options = api.info().get("SecurityOptions") or []
            _SECCOMP[key] = any("name=seccomp" in str(o) for o in options)
        except Exception:  # an unreachable daemon fails the creation that follows
            return [f"seccomp={docker_profile()}"]
        if not _SECCOMP[key]:
            log.warning("docker_without_seccomp", hint="the daemon cannot filter syscalls")
    return [f"seccomp={docker_profile()}"] if _SECCOMP[key] else []


def slug(text: str, size: int = 24) -> str:
    """``text`` as a Docker-safe name part."""
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.")[:size] or "x"


class Maker:
    """Makes the objects of one sandbox, hardened and limited, labelled and recorded."""

    def __init__(
        self,
        api: Any,
        *,
        sandbox_id: str,
        labels: dict[str, str],
        limits: Limits,
        ledger: Ledger,
        image: str,
        image_id: str,
        image_labels: dict[str, str],
    ) -> None:
        self.api = api
        self.sandbox_id = sandbox_id
        self.labels = labels
        self.limits = limits
        self.ledger = ledger
        self.image = image
        """The image as the spec names it (``hazmat-sandbox``)."""
        self.image_id = image_id
        self.image_labels = image_labels
        self.network: str | None = None
        """The sandbox's internal network, once made."""
        self._ids: dict[str, tuple[int, int]] = {}

    def make_network(self, episode_id: str) -> str:
        """The sandbox's ``internal`` bridge network (no route out); returns its name."""
        name = f"hazmat-{slug(episode_id, 20)}-{self.sandbox_id}"
        net = self.api.create_network(
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
        self.ledger.networks.append(net["Id"])
        self.network = name
        return name

    def host_config(
        self,
        *,
        read_only: bool,
        nnp: bool,
        cap_add: list[str],
        mounts: list[Any],
        dns: list[str] | None = None,
    ) -> dict[str, Any]:
        """``cap_drop=ALL`` plus ``cap_add``, hazmat's seccomp profile
        (:mod:`hazmat.sandbox.seccomp`), the limits, ``init``, private IPC with a sized
        ``/dev/shm``, the sandbox's network (or none), ``oom_score_adj`` 500."""
        import docker.types

        lim = self.limits
        fsize = lim.file_size_mb * 1024 * 1024
        return dict(
            self.api.create_host_config(
                cap_drop=["ALL"],
                cap_add=cap_add or None,
                security_opt=seccomp_options(self.api)
                + (["no-new-privileges:true"] if nnp else []),
                read_only=read_only,
                mounts=mounts,
                pids_limit=lim.pids,
                shm_size=f"{tmpfs_sizes(lim.memory_mb, 1)[1]}m",
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
                network_mode=self.network or "none",
                oom_score_adj=500,
                dns=dns,
                dns_opt=["attempts:1", "timeout:2"] if dns else None,
            )
        )

    def volumes(self, role: str, mounts: dict[str, tuple[int, int, int]]) -> list[Any]:
        """One tmpfs-backed, labelled volume per mount point (``target -> (uid, gid,
        mode)``), sized so that together they fit the memory limit (:func:`tmpfs_sizes`)."""
        import docker.types

        size, _shm = tmpfs_sizes(self.limits.memory_mb, len(mounts))
        out = []
        for i, (target, (uid, gid, mode)) in enumerate(sorted(mounts.items())):
            name = f"hazmat-{self.sandbox_id}-{slug(role, 20)}-{i}"
            self.api.create_volume(
                name,
                driver="local",
                labels={**self.labels, "hazmat.mount": target},
                driver_opts={
                    "type": "tmpfs",
                    "device": "tmpfs",
                    "o": f"size={size}m,uid={uid},gid={gid},mode={mode:o},nosuid,nodev",
                },
            )
            self.ledger.volumes.append(name)
            out.append(docker.types.Mount(target, name, type="volume", no_copy=True))
        return out

    def create(
        self,
        image: str | None,
        command: list[str] | None,
        *,
        user: str,
        workdir: str | None,
        env: dict[str, str],
        host_config: dict[str, Any],
        alias: str,
        entrypoint: list[str] | None,
        extra: dict[str, str],
    ) -> str:
        """Create (not start) a container with stdin open, on the sandbox's network as
        ``alias``; returns its id."""
        import docker.types

        networking = None
        if self.network is not None:
            networking = docker.types.NetworkingConfig(
                {self.network: docker.types.EndpointConfig(self.api._version, aliases=[alias])}
            )
        cid = str(
            self.api.create_container(
                image,
                command=command,
                user=user,
                working_dir=workdir,
                environment=env,
                labels={**self.labels, **extra},
                stdin_open=True,
                tty=False,
                host_config=host_config,
                networking_config=networking,
                hostname=alias,
                entrypoint=entrypoint,
            )["Id"]
        )
        self.ledger.containers.append(cid)
        return cid

    def commit_with_files(self, data: bytes) -> str:
        """A per-episode image: the sandbox image plus the tar ``data`` (read-only root
        case); returns its id."""
        cid = self.api.create_container(
            self.image_id, command=["true"], labels=self.labels, network_disabled=True
        )["Id"]
        self.ledger.containers.append(cid)
        try:
            self.api.put_archive(cid, "/", data)
            label_args = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.labels.items())
            result = self.api.commit(
                cid,
                repository="hazmat-episode",
                tag=self.sandbox_id,
                changes=[f"LABEL {label_args}"],
            )
        finally:
            self.api.remove_container(cid, force=True)
            self.ledger.containers.remove(cid)
        image_id = str(result["Id"])
        self.ledger.images.append(image_id)
        return image_id

    def logs(self, cid: str) -> str:
        """The last stderr lines of container ``cid`` (for error messages)."""
        try:
            text = self.api.logs(cid, stdout=False, stderr=True, tail=20)
            return str(text.decode(errors="replace")).strip()[-1000:]
        except Exception:
            return ""

    def user_ids(self, user: str) -> tuple[int, int]:
        """uid/gid of ``user`` in the sandbox image (``agent`` is 1000:1000).

        Raises:
            SandboxStartError: no such user in the image.
        """
        if user in self._ids:
            return self._ids[user]
        agent_uid = self.image_labels.get("hazmat.agent_uid", "")
        if user == "agent" and agent_uid.isdigit():
            ids = (int(agent_uid), int(agent_uid))
        elif user == "root":
            ids = (0, 0)
        elif re.fullmatch(r"\d+(:\d+)?", user):
            uid, _, gid = user.partition(":")
            ids = (int(uid), int(gid or uid))
        else:
            ids = self._passwd_lookup(user)
        self._ids[user] = ids
        return ids

    def _passwd_lookup(self, user: str) -> tuple[int, int]:
        cid = self.api.create_container(
            self.image_id, command=["true"], labels=self.labels, network_disabled=True
        )["Id"]
        try:
            stream, _ = self.api.get_archive(cid, "/etc/passwd")
            data = b"".join(stream)
        finally:
            self.api.remove_container(cid, force=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            text = member.read().decode(errors="replace") if member else ""
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) >= 4 and parts[0] == user:
                return int(parts[2]), int(parts[3])
        raise SandboxStartError(f"user {user!r} does not exist in the image {self.image}")
