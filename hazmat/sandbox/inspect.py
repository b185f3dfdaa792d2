"""hazmat's sandboxes as Inspect sandbox environment providers (the ``inspect`` extra).

Two providers are registered with Inspect (``inspect-ai`` on PyPI) when this module is
imported, which Inspect does through the ``inspect_ai`` entry-point group::

    [project.entry-points.inspect_ai]
    hazmat = "hazmat.sandbox.inspect"

- ``hazmat-local``: the bubblewrap backend (no daemon, no ``docker compose``);
- ``hazmat-docker``: the Docker backend, through the Docker API (no ``docker compose``,
  so it runs where Inspect's own ``docker`` provider cannot: compose older than 2.21).

Both give an Inspect eval hazmat's hardened, observed sandbox: the agent's commands run
as ``spec.user`` (``agent``, no capabilities), no network, resource limits, and the
network sentinel records every lookup and connection attempt (each attempt seen during
an ``exec`` is added to the sample's transcript as an ``InfoEvent`` with source
``hazmat-sentinel``). Usage::

    Task(..., sandbox="hazmat-local")                              # the default spec
    Task(..., sandbox=("hazmat-docker", "sandbox.yaml"))           # a spec in YAML
    Task(..., sandbox=SandboxEnvironmentSpec(
        "hazmat-local", HazmatSandboxConfig(spec=SandboxSpec(env={"X": "1"}))))

The YAML file holds a hazmat :class:`~hazmat.sandbox.base.SandboxSpec` (the keys of a
task.yaml's ``sandbox:`` section); a task.yaml itself is accepted (its ``sandbox:``
section is used, placeholders such as ``{{flag}}`` stay literal), and so is a mapping
with the fields of :class:`HazmatSandboxConfig` (``spec``, ``run_id``).

How Inspect's calls map (the semantics of ``docs/inspect.md``): relative paths and cwd
resolve against ``spec.workdir``; ``exec``, ``read_file`` and ``write_file`` act as
``spec.user``; ``exec(timeout=None)`` means ``spec.limits.exec_timeout`` (hazmat runs no
unbounded command); a timeout kills the command's whole process tree and raises
``TimeoutError``; an output stream over Inspect's limit raises
``OutputLimitExceededError`` with the kept head; a used-up sandbox raises
``SandboxUnavailableError``.

Each sandbox's facts (``Sandbox.info()``: backend, bwrap version or container, hardening,
sentinel) are added to the sample's transcript as an ``InfoEvent`` with source ``hazmat``.

Lifecycle state (which sandboxes of which config are alive, for ``task_cleanup``) lives
at class level, because Inspect's lifecycle calls are class methods.
"""

from __future__ import annotations

import asyncio
import errno
import json
import posixpath
import shlex
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal, cast, overload

import anyio
import structlog
import yaml
from inspect_ai.log import transcript
from inspect_ai.util import (
    ExecResult,
    OutputLimitExceededError,
    SandboxConnection,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxEnvironmentLimits,
    SandboxUnavailableError,
    SandboxUserUnsupportedError,
    sandboxenv,
)
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError
from typing_extensions import override

# hazmat imports: the one block to re-point when hazmat.sandbox is restructured.
from hazmat.errors import FileTooLargeError, SandboxClosedError, SandboxError, SpecError
from hazmat.sandbox.base import ExecResult as HazmatExecResult
from hazmat.sandbox.base import Sandbox, SandboxSpec, create_sandbox
from hazmat.sandbox.cleanup import cleanup as docker_cleanup
from hazmat.sandbox.local import cleanup_leftovers as local_cleanup

__all__ = [
    "DEFAULT_RUN_ID",
    "HazmatDockerSandboxEnvironment",
    "HazmatLocalSandboxEnvironment",
    "HazmatSandboxConfig",
    "HazmatSandboxEnvironment",
    "load_config",
]

log = structlog.get_logger("hazmat.sandbox.inspect")

DEFAULT_RUN_ID = "inspect"
"""The hazmat run id of sandboxes made for Inspect unless the config names another
(Docker label ``hazmat.run``; ``inspect sandbox cleanup hazmat-docker`` removes it)."""

CHANNEL_FILE_MAX = 128 * 1024 * 1024
"""Largest file moved in one supervisor request: the whole file travels base64-encoded in
one JSON line (the host reads lines of up to 256 MiB), so reads are capped here."""

CHANNEL_OUTPUT_MAX = 64 * 1024 * 1024
"""Largest per-stream exec output kept: both streams travel in one JSON line."""

WRITE_CHUNK = 32 * 1024 * 1024
"""Writes larger than this go in pieces (the first with write_file, the rest appended),
so neither side holds a whole large file base64-encoded in memory."""

APPEND_TIMEOUT = 600.0
"""Seconds one appended piece of a large write may take."""

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the commands this module runs itself (never the image's PATH)."""


class HazmatSandboxConfig(BaseModel):
    """Configuration of a ``hazmat-local`` / ``hazmat-docker`` sandbox.

    Hashable (Inspect keeps sandbox specs in sets), frozen, and serialised into the eval
    log; :meth:`HazmatSandboxEnvironment.config_deserialize` reads it back.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: SandboxSpec = SandboxSpec()
    """The hazmat sandbox spec: image, network, files, setup, limits, hardening, user."""
    run_id: str = DEFAULT_RUN_ID
    """The hazmat run id stamped on what the sandbox makes (Docker label ``hazmat.run``)."""

    def __hash__(self) -> int:
        return hash(self.model_dump_json())


def load_config(config: SandboxEnvironmentConfigType | None) -> HazmatSandboxConfig:
    """The :class:`HazmatSandboxConfig` an Inspect sandbox config stands for.

    ``None`` is the default spec; a :class:`HazmatSandboxConfig` is used as is; a
    :class:`SandboxSpec` is wrapped; a ``str`` is the path of a YAML file (see the
    module docstring for what it may hold).

    Raises:
        SpecError: the file cannot be read, is not YAML, or does not validate.
    """
    if config is None:
        return HazmatSandboxConfig()
    if isinstance(config, HazmatSandboxConfig):
        return config
    if isinstance(config, SandboxSpec):
        return HazmatSandboxConfig(spec=config)
    if isinstance(config, BaseModel):
        raise SpecError(
            f"a hazmat sandbox config must be a HazmatSandboxConfig or a YAML path, "
            f"not a {type(config).__name__}",
            hint="hazmat providers do not read compose files",
        )
    path = Path(config)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read the sandbox config: {exc.strerror}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("a sandbox config must be a mapping", file=str(path))
    try:
        if "sandbox" in data:  # a task.yaml
            return HazmatSandboxConfig(spec=SandboxSpec.model_validate(data["sandbox"] or {}))
        if data and set(data) <= set(HazmatSandboxConfig.model_fields):
            return HazmatSandboxConfig.model_validate(data)
        return HazmatSandboxConfig(spec=SandboxSpec.model_validate(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SpecError(problems, file=str(path)) from None


def _size_str(size: int) -> str:
    """A byte count as Inspect words its limits (``100 MiB``, ``1 KiB``, ``10 bytes``)."""
    for unit, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


def _inspect_spec(spec: SandboxSpec) -> SandboxSpec:
    """``spec`` with caps raised to what Inspect expects (never lowered): exec output
    per stream up to Inspect's exec limit, file transfers up to its read limit, both
    within what one supervisor request carries."""
    limits = spec.limits
    output = max(
        limits.output_bytes, min(SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE, CHANNEL_OUTPUT_MAX)
    )
    files = max(
        limits.file_bytes, min(SandboxEnvironmentLimits.MAX_READ_FILE_SIZE, CHANNEL_FILE_MAX)
    )
    if (output, files) == (limits.output_bytes, limits.file_bytes):
        return spec
    return spec.model_copy(
        update={"limits": limits.model_copy(update={"output_bytes": output, "file_bytes": files})}
    )


def _episode_id(task_name: str) -> str:
    """``<task>-<sample>-e<epoch>-<random>`` (sample and epoch when Inspect runs one)."""
    parts = [task_name]
    try:
        from inspect_ai.log._samples import sample_active

        active = sample_active()
        if active is not None:
            parts += [str(active.sample.id), f"e{active.epoch}"]
    except ImportError:  # pragma: no cover - a private Inspect module that may move
        pass
    parts.append(uuid.uuid4().hex[:8])
    slug = "-".join(parts)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in slug)[-64:]


def _unavailable(exc: SandboxError) -> SandboxUnavailableError:
    """Inspect's error for a hazmat sandbox that is stopped or no longer answers."""
    if isinstance(exc, SandboxClosedError):
        return SandboxUnavailableError(f"the hazmat sandbox is not running: {exc}")
    return SandboxUnavailableError(f"the hazmat sandbox did not answer: {exc}")


class _NoSuchUser(Exception):
    """The requested user is not in the sandbox's /etc/passwd."""


class HazmatSandboxEnvironment(SandboxEnvironment):
    """One hazmat sandbox seen through Inspect's ``SandboxEnvironment`` API.

    Subclasses fix :attr:`backend`. :attr:`hazmat` is the hazmat
    :class:`~hazmat.sandbox.base.Sandbox` underneath (``shell``, ``snapshot``, ...).
    """

    backend: ClassVar[str] = ""
    _live: ClassVar[dict[tuple[str, HazmatSandboxConfig], set[HazmatSandboxEnvironment]]] = {}
    """Sandboxes started and not yet stopped, by (backend, config): Inspect calls
    ``task_cleanup`` once per config at the end of a run (its task name is "shutdown")."""

    def __init__(self, sandbox: Sandbox, config: HazmatSandboxConfig) -> None:
        super().__init__()
        self.hazmat = sandbox
        """The hazmat sandbox this environment drives."""
        self.config = config
        """The config it was made from."""
        self._network: list[dict[str, Any]] = []
        self._sentinel_broken = False
        self._closed = False
        self._log = log.bind(
            backend=self.backend, run_id=sandbox.run_id, episode_id=sandbox.episode_id
        )

    # configuration -------------------------------------------------------------

    @classmethod
    def config_files(cls) -> list[str]:
        """No configuration file is picked up automatically (no compose files)."""
        return []

    @classmethod
    def is_docker_compatible(cls) -> bool:
        """False: hazmat providers take a hazmat spec, not a Dockerfile or compose.yaml."""
        return False

    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> BaseModel:
        """Read a :class:`HazmatSandboxConfig` back from its serialised form (eval logs).

        Raises:
            pydantic.ValidationError: ``config`` is not a valid config.
        """
        return HazmatSandboxConfig.model_validate(config)

    # lifecycle -----------------------------------------------------------------

    @classmethod
    async def task_init(cls, task_name: str, config: SandboxEnvironmentConfigType | None) -> None:
        """Check the config once per task, so a bad spec fails before any sample runs.

        Raises:
            SpecError: the config file is missing or does not validate.
        """
        load_config(config)

    @classmethod
    async def sample_init(
        cls,
        task_name: str,
        config: SandboxEnvironmentConfigType | None,
        metadata: dict[str, Any],
    ) -> dict[str, SandboxEnvironment]:
        """Start one hazmat sandbox for a sample and return it as ``{"default": env}``.

        The spec's files are placed and its setup runs (as root) before this returns;
        Inspect then writes the sample's ``files`` with :meth:`write_file` and runs its
        ``setup`` script with :meth:`exec`, both as ``spec.user``. ``metadata`` is not
        used: a spec is fixed per config (give a sample its own ``sandbox=`` to vary it).

        Raises:
            SpecError: the config does not validate.
            BackendUnavailableError: the backend cannot run here (no namespaces, no daemon).
            ImageError: the spec's image is missing (``hazmat image build``).
            SandboxStartError: the spec cannot run on this backend, or its setup failed.
        """
        cfg = load_config(config)
        spec = _inspect_spec(cfg.spec)
        sandbox = create_sandbox(
            cls.backend, spec, run_id=cfg.run_id, episode_id=_episode_id(task_name)
        )
        try:
            await sandbox.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await sandbox.stop()
            raise
        env = cls(sandbox, cfg)
        cls._live.setdefault((cls.backend, cfg), set()).add(env)
        env._log.debug("inspect_sandbox_started", task=task_name)
        facts = json.loads(json.dumps({"hazmat_sandbox": sandbox.info()}, default=str))
        transcript().info(facts, source="hazmat")
        return {"default": env}

    @classmethod
    async def sample_cleanup(
        cls,
        task_name: str,
        config: SandboxEnvironmentConfigType | None,
        environments: dict[str, SandboxEnvironment],
        interrupted: bool,
    ) -> None:
        """Record the sentinel's last events, then stop and remove each sandbox.

        Always removes (also when ``interrupted``): a hazmat sandbox never outlives its
        sample. Never raises for a sandbox already gone.
        """
        for environment in environments.values():
            if isinstance(environment, HazmatSandboxEnvironment):
                with anyio.CancelScope(shield=True):
                    await environment._close(drain=not interrupted)

    @classmethod
    async def task_cleanup(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, cleanup: bool
    ) -> None:
        """Stop every sandbox of this config that is still alive (a sample whose cleanup
        did not run). ``cleanup=False`` (``--no-sandbox-cleanup``) is not honoured: a
        local sandbox dies with this process anyway, and hazmat leaves nothing running.
        A config that no longer loads (its file is gone) stops every sandbox of this
        provider.
        """
        try:
            keys = [(cls.backend, load_config(config))]
        except SpecError:
            keys = [key for key in cls._live if key[0] == cls.backend]
        left: set[HazmatSandboxEnvironment] = set()
        for key in keys:
            left |= cls._live.pop(key, set())
        if left and not cleanup:
            log.warning(
                "inspect_no_sandbox_cleanup_ignored", backend=cls.backend, sandboxes=len(left)
            )
        for environment in list(left):
            with anyio.CancelScope(shield=True):
                await environment._close(drain=False)

    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        """Remove leftovers (``inspect sandbox cleanup hazmat-local|hazmat-docker [ID]``).

        ``hazmat-docker``: every container, network and volume of hazmat run ``id``
        (default :data:`DEFAULT_RUN_ID`, the run of every Inspect sandbox). ``hazmat-local``:
        the folders and cgroups of local sandboxes whose host process died (``id`` unused).

        Raises:
            BackendUnavailableError: (docker) the daemon cannot be reached.
        """
        if cls.backend == "docker":
            counts = await asyncio.to_thread(docker_cleanup, id or DEFAULT_RUN_ID)
            print(f"hazmat-docker: removed {counts}")
        else:
            removed = await asyncio.to_thread(local_cleanup)
            print(f"hazmat-local: removed {len(removed)} leftover(s)")

    async def _close(self, *, drain: bool) -> None:
        """Drain the sentinel (when ``drain``), stop the sandbox, forget it. Never raises."""
        if drain:
            await self._drain_network()
        self._closed = True
        try:
            await self.hazmat.stop()
        except Exception as exc:  # stop() is documented not to raise; be sure of it
            self._log.warning("inspect_sandbox_stop_failed", error=str(exc))
        live = self._live.get((self.backend, self.config))
        if live is not None:
            live.discard(self)
        self._log.debug("inspect_sandbox_stopped", network_events=len(self._network))

    # network -------------------------------------------------------------------

    async def network_events(self) -> list[dict[str, Any]]:
        """Every event the network sentinel recorded in this sandbox so far (lookups,
        connection attempts, requests), oldest first; empty when nothing was tried or
        the sandbox has no sentinel. After cleanup: what was recorded until then."""
        await self._drain_network()
        return list(self._network)

    async def _drain_network(self) -> None:
        """Fetch the sentinel's new events, keep them and add them to the transcript."""
        if self._sentinel_broken or self._closed:
            return
        try:
            events = await self.hazmat.network_events()
        except SandboxError as exc:
            self._sentinel_broken = True
            self._log.warning("inspect_sentinel_unavailable", error=str(exc))
            return
        if not events:
            return
        self._network += events
        transcript().info(
            {"network_events": cast(list[JsonValue], events)}, source="hazmat-sentinel"
        )

    # paths and users -----------------------------------------------------------

    def _path(self, path: str) -> str:
        """``path`` made absolute against ``spec.workdir``."""
        return posixpath.join(self.hazmat.spec.workdir, path)

    async def _user(self, user: str | None) -> str | None:
        """The hazmat user for an Inspect ``user``: None (``spec.user``), ``root``, or a
        uid (``uid:gid`` when they differ) looked up in the sandbox's live /etc/passwd.

        Raises:
            _NoSuchUser: the name is not in /etc/passwd.
        """
        if user is None or user == self.hazmat.spec.user:
            return None
        if user == "root" or user.isdigit():
            return user
        try:
            passwd = (await self.hazmat.read_file("/etc/passwd")).decode(errors="replace")
        except FileNotFoundError:
            passwd = ""
        for line in passwd.splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == user and fields[2].isdigit():
                uid, gid = fields[2], fields[3]
                return uid if gid in (uid, "") else f"{uid}:{gid}"
        raise _NoSuchUser(user)

    # commands ------------------------------------------------------------------

    @override
    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,
        concurrency: bool = True,
    ) -> ExecResult[str]:
        """Run ``cmd`` (an argv, resolved through the sandbox's PATH) in a fresh process.

        ``input`` is its stdin (text as UTF-8); ``cwd`` is relative to ``spec.workdir``
        (the default); ``env`` is added to the sandbox's environment; ``user`` is
        ``spec.user`` by default, ``root``, a uid, or a name from the sandbox's
        /etc/passwd (an unknown name gives a failed result naming it, as ``docker exec``
        does); ``timeout`` defaults to ``spec.limits.exec_timeout``. A missing command
        is a result with exit code 127. ``timeout_retry`` is ignored (hazmat never
        reruns a command: it may not be idempotent); ``concurrency`` is ignored.
        Output is decoded as UTF-8 with replacement characters.

        Raises:
            TimeoutError: the timeout expired; the command's whole process tree was
                killed (``truncated_output`` holds what it printed before).
            PermissionError: ``cmd[0]`` exists but cannot be executed.
            OutputLimitExceededError: a stream went over Inspect's exec output limit
                (``truncated_output`` holds the head that was kept).
            SandboxUserUnsupportedError: this backend cannot run commands as ``user``.
            SandboxUnavailableError: the sandbox is stopped or its channel broke.
        """
        if not cmd:
            raise ValueError("exec needs a non-empty command")
        stdin = input.encode("utf-8") if isinstance(input, str) else input
        try:
            hz_user = await self._user(user)
        except _NoSuchUser:
            return ExecResult(
                success=False,
                returncode=126,
                stdout="",
                stderr=f"unable to find user {user}: no matching entries in passwd file\n",
            )
        except SandboxError as exc:
            raise _unavailable(exc) from exc
        seconds = float(timeout) if timeout else self.hazmat.spec.limits.exec_timeout
        result = await self._run(
            list(cmd),
            stdin=stdin,
            cwd=self._path(cwd) if cwd else None,
            env=env or None,
            user=hz_user,
            timeout=seconds,
        )
        await self._drain_network()
        if result.timed_out:
            error = TimeoutError(f"Command timed out after {seconds:g} seconds")
            partial = result.stdout_text + result.stderr_text
            if partial:
                error.truncated_output = partial  # type: ignore[attr-defined]
            raise error
        if (
            result.exit_code == 126
            and not result.stdout
            and result.stderr == f"{cmd[0]}: permission denied\n".encode()
        ):
            raise PermissionError(errno.EACCES, "Permission denied executing command", cmd[0])
        limit = SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE
        kept = self.hazmat.spec.limits.output_bytes
        if max(result.stdout_total, result.stderr_total) > min(limit, kept):
            raise OutputLimitExceededError(
                limit_str=_size_str(min(limit, kept)),
                truncated_output=(result.stdout[:limit] + result.stderr[:limit]).decode(
                    "utf-8", errors="replace"
                ),
            )
        return ExecResult(
            success=result.exit_code == 0,
            returncode=result.exit_code,
            stdout=result.stdout_text,
            stderr=result.stderr_text,
        )

    async def _run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None,
        cwd: str | None,
        env: dict[str, str] | None,
        user: str | None,
        timeout: float | None,
    ) -> HazmatExecResult:
        """hazmat's exec with its errors turned into Inspect's.

        Raises:
            SandboxUserUnsupportedError: the backend refused ``user``.
            SandboxUnavailableError: the sandbox is stopped or its channel broke.
        """
        try:
            return await self.hazmat.exec(
                argv, timeout=timeout, stdin=stdin, cwd=cwd, env=env, user=user
            )
        except SandboxClosedError as exc:
            raise _unavailable(exc) from exc
        except SandboxError as exc:
            if user not in (None, "root"):
                raise SandboxUserUnsupportedError(
                    f"hazmat-{self.backend} cannot run commands as {user!r}: {exc}"
                ) from exc
            raise _unavailable(exc) from exc

    # files ---------------------------------------------------------------------

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    @override
    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        """Read ``file`` (relative to ``spec.workdir``) as ``spec.user``, byte-exact.

        Text is decoded as strict UTF-8 with newlines kept as they are (``\\r\\n`` stays).

        Raises:
            FileNotFoundError: no such file.
            PermissionError: ``spec.user`` may not read it.
            IsADirectoryError: it is a directory.
            UnicodeDecodeError: ``text`` and the file is not UTF-8.
            OutputLimitExceededError: the file is larger than Inspect's read limit.
            OSError: it is not a regular file (a FIFO, a device).
            SandboxUnavailableError: the sandbox is stopped or its channel broke.
        """
        if posixpath.basename(file.rstrip("/")) in (".", ".."):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", file)
        limit = SandboxEnvironmentLimits.MAX_READ_FILE_SIZE
        try:
            data = await self.hazmat.read_file(self._path(file))
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", file) from None
        except IsADirectoryError:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", file) from None
        except PermissionError:
            raise PermissionError(errno.EACCES, "Permission denied", file) from None
        except FileTooLargeError:
            cap = self.hazmat.spec.limits.file_bytes
            raise OutputLimitExceededError(_size_str(min(limit, cap)), None) from None
        except SandboxError as exc:
            raise _unavailable(exc) from exc
        if len(data) > limit:
            raise OutputLimitExceededError(SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, None)
        return data.decode("utf-8") if text else data

    @override
    async def write_file(self, file: str, contents: str | bytes) -> None:
        """Write ``file`` (relative to ``spec.workdir``) as ``spec.user``, byte-exact,
        making missing parent folders; text is written as UTF-8. Any size: a file over
        :data:`WRITE_CHUNK` goes in pieces (a reader may see it grow until this returns).

        Raises:
            PermissionError: ``spec.user`` may not write there (read-only, not its file).
            IsADirectoryError: ``file`` is a directory.
            TimeoutError: appending a piece of a large file took over ``APPEND_TIMEOUT``.
            OSError: the file system refused (full, over ``limits.file_size_mb``, ...).
            SandboxUnavailableError: the sandbox is stopped or its channel broke.
        """
        data = contents.encode("utf-8") if isinstance(contents, str) else contents
        path = self._path(file)
        chunk = min(WRITE_CHUNK, self.hazmat.spec.limits.file_bytes)
        try:
            await self.hazmat.write_file(path, data[:chunk])
        except IsADirectoryError:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", file) from None
        except PermissionError:
            raise PermissionError(errno.EACCES, "Permission denied", file) from None
        except SandboxError as exc:
            raise _unavailable(exc) from exc
        for start in range(chunk, len(data), chunk):
            await self._append(file, path, data[start : start + chunk])

    async def _append(self, file: str, path: str, data: bytes) -> None:
        """Append ``data`` to ``path`` as ``spec.user`` (a piece of a large write)."""
        result = await self._run(
            ["/bin/sh", "-c", 'exec cat >> "$1"', "sh", path],
            stdin=data,
            cwd=None,
            env={"PATH": SYSTEM_PATH},
            user=None,
            timeout=APPEND_TIMEOUT,
        )
        if result.timed_out:
            raise TimeoutError(f"writing {file} timed out")
        if not result.ok:
            why = result.stderr_text.strip()
            if "permission denied" in why.lower():
                raise PermissionError(errno.EACCES, "Permission denied", file)
            raise OSError(errno.EIO, f"appending to the file failed: {why}", file)

    # connection ----------------------------------------------------------------

    @override
    async def connection(self, *, user: str | None = None) -> SandboxConnection:
        """How a person joins this sandbox with a shell.

        Raises:
            NotImplementedError: the backend offers no way in from outside (local).
            ConnectionError: the sandbox is not running.
        """
        raise NotImplementedError(f"hazmat-{self.backend} sandboxes cannot be joined from outside")


@sandboxenv(name="hazmat-local")
class HazmatLocalSandboxEnvironment(HazmatSandboxEnvironment):
    """``hazmat-local``: a bubblewrap sandbox per sample (no daemon needed).

    ``connection()`` raises NotImplementedError: a bubblewrap sandbox has no door
    from outside (its namespaces belong to the eval process)."""

    backend: ClassVar[str] = "local"


@sandboxenv(name="hazmat-docker")
class HazmatDockerSandboxEnvironment(HazmatSandboxEnvironment):
    """``hazmat-docker``: a hardened container per sample, through the Docker API
    (``docker compose`` is not needed)."""

    backend: ClassVar[str] = "docker"

    @override
    async def connection(self, *, user: str | None = None) -> SandboxConnection:
        """``docker exec -it --user USER <box> bash -l`` (``USER`` defaults to ``spec.user``).

        Raises:
            ConnectionError: the sandbox is not running.
        """
        container = self.hazmat.info().get("container")
        try:
            alive = (
                bool(container)
                and (
                    await self._run(
                        ["true"], stdin=None, cwd=None, env=None, user=None, timeout=10.0
                    )
                ).ok
            )
        except SandboxUnavailableError:
            alive = False
        if not alive:
            raise ConnectionError("the hazmat-docker sandbox is not running")
        who = user or self.hazmat.spec.user
        command = ["docker", "exec", "-it", "--user", who, str(container), "bash", "-l"]
        return SandboxConnection(
            type="hazmat-docker", command=shlex.join(command), container=str(container)
        )
