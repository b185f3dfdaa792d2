"""The sandbox protocol: specs, results, the ``Sandbox`` ABC and the backend registry.

A sandbox is where tool calls execute. It is used as an async context manager::

    async with create_sandbox("local", spec, run_id="r1", episode_id="e1") as sb:
        result = await sb.exec(["echo", "hi"])
        result = await sb.shell("cd /tmp && export X=1")   # persistent session
        result = await sb.shell("echo $X; pwd")            # -> "1\\n/tmp\\n"

Lifecycle: ``start()`` makes the sandbox (places ``spec.files``, runs ``spec.setup``
as root, starts ``spec.services``); ``stop()`` removes everything it made and is
safe to call more than once. ``__aexit__`` always calls ``stop()``, on a normal end,
an exception, a cancellation (Ctrl-C, timeouts) alike.

Backends register themselves by name (``local``, ``docker``) with
:func:`register_backend`; :func:`create_sandbox` looks them up.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hazmat.errors import UnknownBackendError

if TYPE_CHECKING:
    from hazmat.sandbox.netwatch import NetworkSentinel

__all__ = [
    "DEFAULT_OUTPUT_CAP",
    "ExecResult",
    "FileSpec",
    "Hardening",
    "Limits",
    "Sandbox",
    "SandboxSpec",
    "ServiceSpec",
    "SnapshotInfo",
    "available_backends",
    "create_sandbox",
    "get_backend",
    "register_backend",
]

DEFAULT_OUTPUT_CAP = 10 * 1024 * 1024
"""Bytes kept per output stream for the record (10 MiB)."""

NetworkMode = Literal["none", "internal", "allowlist"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Frozen):
    """Resource limits applied to every process in the sandbox."""

    pids: int = Field(256, ge=8, description="max processes/threads")
    memory_mb: int = Field(1024, ge=32, description="memory limit (swap equals it on docker)")
    cpus: float = Field(1.0, gt=0, description="CPU quota in cores (docker)")
    cpu_seconds: int = Field(600, ge=1, description="CPU time per process (rlimit, local)")
    file_size_mb: int = Field(512, ge=1, description="largest file a process may write")
    output_bytes: int = Field(DEFAULT_OUTPUT_CAP, ge=1024, description="kept per output stream")
    file_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="read_file/write_file cap")
    exec_timeout: float = Field(120.0, gt=0, description="default timeout of one command (s)")


class Hardening(_Frozen):
    """Security knobs. The defaults are the hardened ones; a task that loosens one says so."""

    read_only_root: bool = True
    no_new_privileges: bool = True
    cap_add: tuple[str, ...] = ()


class FileSpec(_Frozen):
    """A file placed in the sandbox before setup runs."""

    content: str = ""
    mode: int = 0o644
    owner: str = "root"


class ServiceSpec(_Frozen):
    """A second container on the sandbox's internal network (docker only)."""

    image: str | None = None
    """Image to run; ``None`` means the sandbox image. ``build`` wins when set."""
    build: str | None = None
    """A folder with a Dockerfile, built offline and cached by content hash."""
    command: list[str] | str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    files: dict[str, FileSpec] = Field(default_factory=dict)
    setup: list[str] = Field(default_factory=list)
    user: str = "root"
    workdir: str | None = None
    healthcheck: str | None = None
    """A shell command run in the service; the sandbox is ready once it exits 0."""
    read_only_root: bool = False

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, value: Any) -> Any:
        return _coerce_files(value)


def _coerce_files(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ({"content": v} if isinstance(v, str) else v) for k, v in value.items()}
    return value


class SandboxSpec(_Frozen):
    """Everything needed to make a sandbox. Frozen; recorded with every episode."""

    image: str = "hazmat-sandbox"
    network: NetworkMode = "none"
    allow_hosts: tuple[str, ...] = ()
    sentinel: bool = True
    """Watch the network (``hazmat/sandbox/guest/sentinel.py``): every lookup and connection
    attempt is recorded. Off only for benchmarks of the bare sandbox."""
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    files: dict[str, FileSpec] = Field(default_factory=dict)
    setup: list[str] = Field(default_factory=list)
    limits: Limits = Limits()
    hardening: Hardening = Hardening()
    user: str = "agent"
    workdir: str = "/home/agent"
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, value: Any) -> Any:
        return _coerce_files(value)

    @field_validator("files")
    @classmethod
    def _absolute(cls, value: dict[str, FileSpec]) -> dict[str, FileSpec]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"file path must be absolute: {path!r}")
        return value


class ExecResult(_Frozen):
    """What one command did. Outputs are bytes, capped at ``Limits.output_bytes`` each."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    duration: float = 0.0
    timed_out: bool = False
    truncated: bool = False
    """True when either stream went over the cap; the rest was dropped."""
    stdout_total: int = 0
    """Bytes the command wrote to stdout, including any dropped past the cap."""
    stderr_total: int = 0

    @property
    def stdout_text(self) -> str:
        """stdout decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stderr_text(self) -> str:
        """stderr decoded as UTF-8 (invalid bytes replaced)."""
        return self.stderr.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        """True when the command exited 0 and did not time out."""
        return self.exit_code == 0 and not self.timed_out


class SnapshotInfo(_Frozen):
    """Where a snapshot was saved and what it holds."""

    path: Path
    """Folder holding ``changes.json`` and ``changes.tar``."""
    changed: list[str] = Field(default_factory=list)
    """Paths added or changed since the sandbox started (deleted ones prefixed ``-``)."""


class Sandbox(abc.ABC):
    """One isolated place where tool calls execute.

    Subclasses implement ``start``, ``stop``, ``exec``, ``shell``, ``read_file``,
    ``write_file`` and ``snapshot``. Every call after ``stop()`` raises
    :class:`~hazmat.errors.SandboxClosedError`.
    """

    backend: ClassVar[str] = ""

    def __init__(
        self, spec: SandboxSpec, *, run_id: str = "adhoc", episode_id: str = "adhoc"
    ) -> None:
        self.spec = spec
        self.run_id = run_id
        self.episode_id = episode_id
        self.sentinel: NetworkSentinel | None = None
        """The network sentinel watching this sandbox, once started (None: not watched)."""

    # lifecycle ---------------------------------------------------------------

    @abc.abstractmethod
    async def start(self) -> None:
        """Make the sandbox: files, setup (as root), services, health checks.

        Raises:
            BackendUnavailableError: the backend cannot run on this machine.
            ImageError: the image is missing.
            SandboxStartError: a setup command or a health check failed.
        On any failure, whatever was made is removed before the error propagates.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Kill every process and remove every container, network and temp dir made.

        Idempotent and never raises for things already gone.
        """

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # commands ----------------------------------------------------------------

    @abc.abstractmethod
    async def exec(
        self,
        cmd: str | list[str],
        *,
        timeout: float | None = None,
        stdin: bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        service: str | None = None,
    ) -> ExecResult:
        """Run one command in a fresh process and wait for it.

        ``cmd`` as a list is an argv; as a string it runs with ``/bin/sh -c``.
        A command that is not found gives exit code 127 (it does not raise).
        On timeout the whole process tree is killed, detached children included,
        and the result has ``timed_out=True`` and exit code 124.
        ``user`` defaults to ``spec.user``; ``"root"`` is for the scorer and setup.
        ``service`` runs it in a named service instead of the agent's box.

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: the channel into the sandbox broke.
        """

    @abc.abstractmethod
    async def shell(self, command: str, *, timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the persistent bash session of ``spec.user``.

        The working directory, variables, exported variables, shell functions and
        aliases carry over from one call to the next, as in a terminal.
        Timeouts behave as in :meth:`exec`.
        """

    @abc.abstractmethod
    async def read_file(self, path: str, *, service: str | None = None) -> bytes:
        """Read a file from the sandbox, byte-exact.

        Raises:
            FileNotFoundError: no such file.
            FileTooLargeError: the file is larger than ``limits.file_bytes``.
        """

    @abc.abstractmethod
    async def write_file(
        self, path: str, data: bytes, *, mode: int | None = None, user: str | None = None
    ) -> None:
        """Write a file in the sandbox, byte-exact, creating parent folders.

        Written as ``user`` (default ``spec.user``), so the agent can only write
        where the agent could write.

        Raises:
            PermissionError: the user may not write there (read-only root, etc.).
            FileTooLargeError: ``data`` is larger than ``limits.file_bytes``.
        """

    @abc.abstractmethod
    async def snapshot(self, dest: Path) -> SnapshotInfo:
        """Save what changed in the sandbox file system since start into ``dest``."""

    async def monitor_report(
        self, *, roots: list[str], since: str | None, max_files: int, watch: list[str]
    ) -> str | None:
        """One after-step monitor report read in-process by the sandbox's root supervisor
        (the text format of :func:`hazmat.policy.monitors.build_script`), or None when the
        backend cannot; the monitor then runs its shell script instead."""
        return None

    async def network_events(self) -> list[dict[str, Any]] | None:
        """The network sentinel's events since the previous call (lookups, connection
        attempts, requests; see ``hazmat/sandbox/guest/sentinel.py``), or None when this
        sandbox has no sentinel.

        Raises:
            SandboxError: the sentinel went away or did not answer.
        """
        if self.sentinel is None:
            return None
        return await self.sentinel.drain()

    async def processes(self) -> list[dict[str, Any]] | None:
        """The sandbox's processes as seen from outside (works on a frozen sandbox): one
        ``{"pid", "ppid", "user", "state", "cmdline"}`` per process, or None when the backend
        cannot tell. Used for the halt snapshot."""
        return None

    async def freeze(self) -> None:  # noqa: B027 - optional hook
        """Pause every process in the sandbox (used on halt). Default: no-op."""

    def info(self) -> dict[str, Any]:
        """Facts recorded in the ``sandbox_ready`` event (backend, image id, ...)."""
        return {"backend": self.backend, "image": self.spec.image}


# registry --------------------------------------------------------------------

SandboxFactory = Callable[..., Sandbox]

_BACKENDS: dict[str, str | type[Sandbox]] = {
    "local": "hazmat.sandbox.local:LocalSandbox",
    "docker": "hazmat.sandbox.docker:DockerSandbox",
}


def register_backend(name: str, backend: str | type[Sandbox]) -> None:
    """Register a backend class (or a lazy ``"module:Class"`` reference) under ``name``."""
    _BACKENDS[name] = backend


def available_backends() -> list[str]:
    """Names of the registered backends."""
    return sorted(_BACKENDS)


def get_backend(name: str) -> type[Sandbox]:
    """The backend class registered as ``name``.

    Raises:
        UnknownBackendError: no backend has that name.
    """
    try:
        ref = _BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(
            f"unknown sandbox backend {name!r}",
            hint=f"choose one of: {', '.join(available_backends())}",
        ) from None
    if isinstance(ref, str):
        module_name, _, cls_name = ref.partition(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        _BACKENDS[name] = cls
        return cls  # type: ignore[no-any-return]
    return ref


def create_sandbox(
    backend: str, spec: SandboxSpec, *, run_id: str = "adhoc", episode_id: str = "adhoc"
) -> Sandbox:
    """Make (but do not start) a sandbox of the named backend."""
    return get_backend(backend)(spec, run_id=run_id, episode_id=episode_id)
