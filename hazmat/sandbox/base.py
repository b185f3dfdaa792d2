"""The sandbox protocol: specs, results, the ``Sandbox`` ABC and its optional features.

A sandbox is where tool calls execute. It is used as an async context manager::

    async with create_sandbox("local", spec, run_id="r1", episode_id="e1") as sb:
        result = await sb.exec(["echo", "hi"])
        result = await sb.shell("cd /tmp && export X=1")   # persistent session
        result = await sb.shell("echo $X; pwd")            # -> "1\\n/tmp\\n"

Lifecycle: ``start()`` makes the sandbox (places ``spec.files``, runs ``spec.setup``
as root, starts ``spec.services``); ``stop()`` removes everything it made and is
safe to call more than once. ``__aexit__`` always calls ``stop()``, on a normal end,
an exception, a cancellation (Ctrl-C, timeouts) alike.

Every backend implements the :class:`Sandbox` ABC (the conformance suite
:mod:`hazmat.sandbox.testing` checks it). What only some backends can do is declared
by subclassing a small protocol, and checked where it is used (``isinstance``), with
an error that names the backend lacking it (:func:`lacks`):

====================  ==============================================================
:class:`Poolable`     start bare, take an episode's spec later (the warm pool)
:class:`Freezable`    pause every process and list them (the halt snapshot)
:class:`Detachable`   outlive this process (``--keep-on-halt``, ``replay --keep``)
:class:`Attachable`   open a shell on a sandbox another process detached
====================  ==============================================================

The network sentinel is per sandbox, not per backend: ``Sandbox.sentinel`` is the
running sentinel or None (off in the spec, or it could not start).

Backends are found by name through :mod:`hazmat.sandbox.registry`.
"""

from __future__ import annotations

import abc
import base64
import hashlib
from pathlib import Path
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    Protocol,
    Self,
    TypeVar,
    runtime_checkable,
)

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hazmat.errors import SandboxError, SandboxStartError

if TYPE_CHECKING:
    from hazmat.sandbox.netwatch import NetworkSentinel

__all__ = [
    "DEFAULT_OUTPUT_CAP",
    "Attachable",
    "Detachable",
    "ExecResult",
    "FileSpec",
    "Freezable",
    "Hardening",
    "Limits",
    "Poolable",
    "Sandbox",
    "SandboxSpec",
    "ServiceSpec",
    "SnapshotInfo",
    "lacks",
    "require",
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
    """A file placed in the sandbox before setup runs: text, any bytes, or a large file by hash.

    ``content`` is UTF-8 text, or the bytes in base64 when ``encoding`` is ``base64``.
    A large file is named by ``host_path`` (read when the sandbox starts) and ``sha256``
    (checked then), so the spec and the record carry its hash, not its bytes.
    Backends place :meth:`data`.
    """

    content: str = ""
    encoding: Literal["utf-8", "base64"] = "utf-8"
    host_path: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    mode: int = 0o644
    owner: str = "root"

    def data(self) -> bytes:
        """The file's bytes.

        Raises:
            SandboxStartError: a ``host_path`` file is missing or its bytes no longer
                match ``sha256`` (the task folder changed after the task was loaded).
        """
        if self.host_path is None:
            if self.encoding == "base64":
                return base64.b64decode(self.content)
            return self.content.encode()
        try:
            data = Path(self.host_path).read_bytes()
        except OSError as exc:
            raise SandboxStartError(f"cannot read {self.host_path}: {exc.strerror}") from None
        if self.sha256 is not None and hashlib.sha256(data).hexdigest() != self.sha256:
            raise SandboxStartError(
                f"{self.host_path} changed since the task was loaded (sha256 differs)",
                hint="load the task again",
            )
        return data


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
    """Watch the network (``hazmat/sandbox/guest/watch.py``): every lookup and connection
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
    ``write_file``, ``snapshot`` and ``monitor_report`` (backends that run hazmat's
    supervisor get all but the lifecycle and ``snapshot`` from
    :class:`~hazmat.sandbox.channel.ChannelSandbox`). Every call after ``stop()`` raises
    :class:`~hazmat.errors.SandboxClosedError`.
    """

    backend: ClassVar[str] = ""
    """The name the backend is registered under (``local``, ``docker``)."""

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

    @classmethod
    def cleanup(cls, run_id: str | None = None) -> dict[str, int]:
        """Remove what sandboxes of this backend left behind when their process died
        (``hazmat cleanup``); with ``run_id`` only those of that run. Returns counts by
        kind. Default: nothing to remove.

        Raises:
            BackendUnavailableError: the backend cannot be reached to look.
        """
        return {}

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
            SandboxError: the channel into the sandbox broke, or there is no such service.
        """

    @abc.abstractmethod
    async def shell(self, command: str, *, timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the persistent bash session of ``spec.user``.

        The working directory, variables, exported variables, shell functions and
        aliases carry over from one call to the next, as in a terminal.
        Timeouts behave as in :meth:`exec`.
        """

    @abc.abstractmethod
    async def read_file(
        self, path: str, *, user: str | None = None, service: str | None = None
    ) -> bytes:
        """Read a file from the sandbox, byte-exact, as ``user`` (default ``spec.user``;
        in a ``service``, the service's user).

        Raises:
            FileNotFoundError: no such file.
            PermissionError: the user may not read it.
            IsADirectoryError: it is a folder.
            OSError: it is not a regular file (a FIFO, a device).
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
        """Save what changed in the sandbox file system since start into ``dest``
        (``changes.json`` and ``changes.tar``).

        Raises:
            SandboxClosedError: the sandbox is not running.
        """

    @abc.abstractmethod
    async def monitor_report(
        self, *, roots: list[str], since: str | None, max_files: int, watch: list[str]
    ) -> str:
        """One after-step monitor report (the format :func:`hazmat.policy.monitors.parse_report`
        reads), produced inside the sandbox by the supervisor as root.

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: the report could not be made.
        """

    async def network_events(self) -> list[dict[str, Any]] | None:
        """The network sentinel's events since the previous call (lookups, connection
        attempts, requests; see ``hazmat/sandbox/guest/watch.py``), or None when this
        sandbox has no sentinel.

        Raises:
            SandboxError: the sentinel went away or did not answer.
        """
        if self.sentinel is None:
            return None
        return await self.sentinel.drain()

    async def leftovers(self) -> list[str]:
        """What this sandbox left on the host after :meth:`stop` (processes, folders,
        containers...), one line each: should be nothing. The conformance suite checks it
        on every exit path. Default: the backend cannot tell (``[]``)."""
        return []

    def info(self) -> dict[str, Any]:
        """Facts recorded in the ``sandbox_ready`` event (backend, image id, ...)."""
        return {"backend": self.backend, "image": self.spec.image}

    @property
    def environment(self) -> str | None:
        """The hash of the environment this sandbox runs (its image's, or its root file
        system's: the same for both backends, see :mod:`hazmat.sandbox.rootfs`); ``"host"``
        for a local sandbox on the host's system; None when the backend cannot say.
        Read from ``info()["env"]``."""
        env = self.info().get("env")
        return str(env) if env else None


# optional features -------------------------------------------------------------


@runtime_checkable
class Poolable(Protocol):
    """A backend whose started, bare sandboxes can take an episode's spec later."""

    @classmethod
    def poolable(cls, spec: SandboxSpec) -> bool:
        """True when a sandbox started from ``spec`` minus files, setup and labels can
        take ``spec`` with :meth:`adopt`."""
        ...

    async def adopt(self, spec: SandboxSpec, *, episode_id: str | None = None) -> None:
        """Turn this started, bare sandbox into one for ``spec``: place its files, run its
        setup, as ``start`` would have.

        Raises:
            SandboxError: ``spec`` does not fit this sandbox.
            SandboxStartError: a setup command failed.
        """
        ...


@runtime_checkable
class Freezable(Protocol):
    """A backend that can pause a sandbox and list its processes from outside."""

    async def freeze(self) -> None:
        """Pause every process in the sandbox (used on halt). After this only
        ``snapshot``, ``processes`` and ``stop`` make sense."""
        ...

    async def processes(self) -> list[dict[str, Any]] | None:
        """The sandbox's processes as seen from outside (works on a frozen sandbox): one
        ``{"pid", "ppid", "user", "state", "cmdline"}`` per process, or None when it is
        not running."""
        ...


@runtime_checkable
class Detachable(Protocol):
    """A backend whose sandboxes can outlive the process that made them."""

    async def detach(self) -> str:
        """Let the sandbox outlive this process; after this ``stop()`` does nothing.
        Returns the handle an :class:`Attachable` backend opens a shell with, and that
        ``hazmat cleanup --run RUN`` removes.

        Raises:
            SandboxClosedError: the sandbox is not running.
        """
        ...


@runtime_checkable
class Attachable(Protocol):
    """A backend that can open a shell on a sandbox another process detached."""

    @classmethod
    def attach(cls, handle: str, *, user: str | None = None) -> int:
        """Open an interactive shell in the kept sandbox ``handle`` (from
        :meth:`Detachable.detach`); returns the shell's exit code.

        Raises:
            HazmatError: no such kept sandbox, or it is not one of hazmat's.
        """
        ...


F = TypeVar("F")

_DOING: dict[type, str] = {
    Poolable: "pool sandboxes",
    Freezable: "freeze a sandbox",
    Detachable: "keep a sandbox after the run",
    Attachable: "open a shell on a kept sandbox",
}


def lacks(sandbox: Sandbox | type[Sandbox], feature: type, doing: str | None = None) -> str:
    """The sentence saying that ``sandbox``'s backend cannot do ``feature`` (e.g. "the
    local backend cannot keep a sandbox after the run")."""
    name = sandbox.backend or type(sandbox).__name__
    return f"the {name} backend cannot {doing or _DOING.get(feature, feature.__name__)}"


def require(sandbox: Sandbox, feature: type[F], doing: str | None = None) -> F:
    """``sandbox`` as a ``feature`` (for untyped callers: mypy refuses a Protocol class
    for ``type[F]``; typed code checks ``isinstance`` and raises with :func:`lacks`).

    Raises:
        SandboxError: its backend does not declare ``feature`` (the message names it).
    """
    if not isinstance(sandbox, feature):
        raise SandboxError(lacks(sandbox, feature, doing))
    return sandbox


_MOVED = ("available_backends", "create_sandbox", "get_backend", "register_backend")


def __getattr__(name: str) -> Any:
    """``create_sandbox`` and the other registry functions moved to
    :mod:`hazmat.sandbox.registry` (import them from :mod:`hazmat.sandbox`); code written
    against ``hazmat.sandbox.base`` still finds them here."""
    if name in _MOVED:
        from hazmat.sandbox import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
