"""hazmat's sandboxes as Inspect sandbox environment providers (the ``inspect`` extra).

Importing this module registers ``hazmat-local`` (bubblewrap) and ``hazmat-docker`` (the
Docker API; no ``docker compose``) with Inspect, which imports it through the
``inspect_ai`` entry-point group (``hazmat = "hazmat.sandbox.inspect"``)::

    Task(..., sandbox="hazmat-local")                        # hazmat's default spec
    Task(..., sandbox=("hazmat-docker", "sandbox.yaml"))     # a SandboxSpec in YAML
    Task(..., sandbox=SandboxEnvironmentSpec("hazmat-local", HazmatSandboxConfig(spec=...)))

Commands and file operations act as ``spec.user``; relative paths and cwd resolve against
``spec.workdir``. What the network sentinel sees during an ``exec`` and the sandbox's
facts go to the sample's transcript (``InfoEvent`` sources ``hazmat-sentinel``, ``hazmat``).
How each Inspect call maps, and the self-check results: ``docs/inspect.md``.
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
from hazmat.sandbox.base import Sandbox, SandboxSpec
from hazmat.sandbox.docker.ledger import cleanup as docker_cleanup
from hazmat.sandbox.local import cleanup_leftovers as local_cleanup
from hazmat.sandbox.registry import create_sandbox

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
"""hazmat run id (Docker label ``hazmat.run``) of Inspect's sandboxes unless configured."""
CHANNEL_FILE_MAX = 128 * 1024 * 1024
"""Largest file read in one supervisor request (one base64 JSON line, read up to 256 MiB)."""
CHANNEL_OUTPUT_MAX = 64 * 1024 * 1024
"""Largest exec output kept per stream (both streams travel in one JSON line)."""
WRITE_CHUNK = 32 * 1024 * 1024
"""Larger writes go in pieces (the rest appended), so no side holds a huge request."""
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the commands this module runs itself (never the image's PATH)."""


class HazmatSandboxConfig(BaseModel):
    """Configuration of a ``hazmat-local`` / ``hazmat-docker`` sandbox: frozen, hashable
    (Inspect keeps sandbox specs in sets), serialised into eval logs and read back by
    :meth:`HazmatSandboxEnvironment.config_deserialize`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: SandboxSpec = SandboxSpec()
    """The hazmat sandbox spec: image, network, files, setup, limits, hardening, user."""
    run_id: str = DEFAULT_RUN_ID
    """The hazmat run id stamped on what the sandbox makes (Docker label ``hazmat.run``)."""

    def __hash__(self) -> int:
        return hash(self.model_dump_json())


def load_config(config: SandboxEnvironmentConfigType | None) -> HazmatSandboxConfig:
    """The :class:`HazmatSandboxConfig` an Inspect sandbox config stands for.

    ``None``: the default spec. A ``str``: a YAML file holding a :class:`SandboxSpec`,
    a task.yaml (its ``sandbox:`` section; placeholders stay literal) or the fields of
    :class:`HazmatSandboxConfig`. A :class:`SandboxSpec` is wrapped.

    Raises:
        SpecError: the file cannot be read, is not YAML, or does not validate.
    """
    if config is None or isinstance(config, HazmatSandboxConfig):
        return config or HazmatSandboxConfig()
    if isinstance(config, SandboxSpec):
        return HazmatSandboxConfig(spec=config)
    if isinstance(config, BaseModel):
        what = type(config).__name__
        raise SpecError(f"a hazmat sandbox config is a HazmatSandboxConfig or a path, not {what}")
    path = Path(config)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SpecError(f"cannot read the sandbox config: {exc.strerror}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("a sandbox config must be a mapping", file=str(path))
    try:
        if "sandbox" in data:  # a task.yaml
            return HazmatSandboxConfig(spec=SandboxSpec.model_validate(data["sandbox"] or {}))
        if data and set(data) <= set(HazmatSandboxConfig.model_fields):
            return HazmatSandboxConfig.model_validate(data)
        return HazmatSandboxConfig(spec=SandboxSpec.model_validate(data))
    except ValidationError as exc:
        where = [(".".join(map(str, e["loc"])) or "(top)", e["msg"]) for e in exc.errors()]
        raise SpecError("; ".join(f"{k}: {m}" for k, m in where), file=str(path)) from None


def _size_str(size: int) -> str:
    """A byte count as Inspect words its limits (``100 MiB``, ``1 KiB``, ``10 bytes``)."""
    for unit, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


def _inspect_spec(spec: SandboxSpec) -> SandboxSpec:
    """``spec`` with its output and file caps raised (never lowered) to Inspect's limits,
    within what one supervisor request carries."""
    lim, ins = spec.limits, SandboxEnvironmentLimits
    out = max(lim.output_bytes, min(ins.MAX_EXEC_OUTPUT_SIZE, CHANNEL_OUTPUT_MAX))
    files = max(lim.file_bytes, min(ins.MAX_READ_FILE_SIZE, CHANNEL_FILE_MAX))
    limits = lim.model_copy(update={"output_bytes": out, "file_bytes": files})
    return spec if limits == lim else spec.model_copy(update={"limits": limits})


def _episode_id(task_name: str) -> str:
    """``<task>-<sample>-e<epoch>-<random>`` (sample and epoch when Inspect runs one)."""
    from inspect_ai.log._samples import sample_active  # as Inspect's docker provider does

    active = sample_active()
    parts = [task_name] + ([str(active.sample.id), f"e{active.epoch}"] if active else [])
    parts.append(uuid.uuid4().hex[:8])
    slug = "-".join(parts)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in slug)[-64:]


def _unavailable(exc: SandboxError) -> SandboxUnavailableError:
    """Inspect's error for a hazmat sandbox that is stopped or no longer answers."""
    if isinstance(exc, SandboxClosedError):
        return SandboxUnavailableError(f"the hazmat sandbox is not running: {exc}")
    return SandboxUnavailableError(f"the hazmat sandbox did not answer: {exc}")


def _file_error(exc: OSError | SandboxError, file: str, cap: int) -> Exception:
    """Inspect's error for a hazmat file-op error on ``file`` (the name as given)."""
    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(errno.ENOENT, "No such file or directory", file)
    if isinstance(exc, IsADirectoryError):
        return IsADirectoryError(errno.EISDIR, "Is a directory", file)
    if isinstance(exc, PermissionError):
        return PermissionError(errno.EACCES, "Permission denied", file)
    if isinstance(exc, FileTooLargeError):
        return OutputLimitExceededError(_size_str(cap), None)
    if isinstance(exc, SandboxError):
        return _unavailable(exc)
    return OSError(exc.errno or errno.EIO, str(exc), file)  # not a regular file, disk full


class _NoSuchUser(Exception):
    """The requested user is not in the sandbox's /etc/passwd."""


class HazmatSandboxEnvironment(SandboxEnvironment):
    """One hazmat sandbox behind Inspect's ``SandboxEnvironment`` API (subclasses fix
    :attr:`backend`); :attr:`hazmat` is the hazmat sandbox (``shell``, ``snapshot``...)."""

    backend: ClassVar[str] = ""
    _live: ClassVar[dict[tuple[str, HazmatSandboxConfig], set[HazmatSandboxEnvironment]]] = {}
    """Sandboxes not yet stopped, by (backend, config): Inspect calls ``task_cleanup`` once
    per config at the end of a run, with the task name "shutdown"."""

    def __init__(self, sandbox: Sandbox, config: HazmatSandboxConfig) -> None:
        super().__init__()
        self.hazmat = sandbox
        self.config = config
        self._network: list[dict[str, Any]] = []
        self._sentinel_broken = False
        self._closed = False
        self._log = log.bind(
            backend=self.backend, run_id=sandbox.run_id, episode_id=sandbox.episode_id
        )

    # configuration (no config file is picked up automatically: no compose files) ---

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

        The spec's files and setup (as root) are done before this returns; Inspect then
        writes the sample's ``files`` and runs its ``setup`` as ``spec.user``.
        ``metadata`` is not used (give a sample its own ``sandbox=`` to vary the spec).

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
        """Record the sentinel's last events, then stop and remove each sandbox (also
        when ``interrupted``). Never raises for a sandbox already gone."""
        for environment in environments.values():
            if isinstance(environment, HazmatSandboxEnvironment):
                with anyio.CancelScope(shield=True):
                    await environment._close(drain=not interrupted)

    @classmethod
    async def task_cleanup(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, cleanup: bool
    ) -> None:
        """Stop every sandbox of this config still alive (every one of this provider if
        the config no longer loads). ``cleanup=False`` is not honoured: hazmat leaves
        nothing running (and a local sandbox dies with this process anyway)."""
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
        """Every event the network sentinel recorded here so far (lookups, connection
        attempts, requests), oldest first; empty when none or no sentinel."""
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
        """Run ``cmd`` (argv, resolved through the sandbox's PATH) in a fresh process.

        ``input``: stdin; ``cwd``: relative to ``spec.workdir`` (the default); ``env``:
        added; ``user``: ``spec.user`` by default, ``root``, a uid, or a name from the
        live /etc/passwd (unknown: a failed result naming it, as ``docker exec`` gives);
        ``timeout``: ``spec.limits.exec_timeout`` by default. A missing command is exit
        code 127. ``timeout_retry`` (hazmat never reruns a command) and ``concurrency``
        are ignored. Output is UTF-8 with replacement characters.

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
            why = f"unable to find user {user}: no matching entries in passwd file\n"
            return ExecResult(success=False, returncode=126, stdout="", stderr=why)
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
        stdin: bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: float | None = None,
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
        """Read ``file`` (relative to ``spec.workdir``) as ``spec.user``, byte-exact; text
        is strict UTF-8 with newlines kept (``\\r\\n`` stays).

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
        except (OSError, SandboxError) as exc:
            cap = min(limit, self.hazmat.spec.limits.file_bytes)
            raise _file_error(exc, file, cap) from exc
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
            TimeoutError: appending a piece of a large file took over 10 minutes.
            OSError: the file system refused (full, over ``limits.file_size_mb``, ...).
            SandboxUnavailableError: the sandbox is stopped or its channel broke.
        """
        data = contents.encode("utf-8") if isinstance(contents, str) else contents
        path = self._path(file)
        chunk = min(WRITE_CHUNK, self.hazmat.spec.limits.file_bytes)
        try:
            await self.hazmat.write_file(path, data[:chunk])
        except (OSError, SandboxError) as exc:
            raise _file_error(exc, file, chunk) from exc
        for start in range(chunk, len(data), chunk):
            await self._append(file, path, data[start : start + chunk])

    async def _append(self, file: str, path: str, data: bytes) -> None:
        """Append ``data`` to ``path`` as ``spec.user`` (a piece of a large write)."""
        argv = ["/bin/sh", "-c", 'exec cat >> "$1"', "sh", path]
        result = await self._run(argv, stdin=data, env={"PATH": SYSTEM_PATH}, timeout=600)
        if result.timed_out:
            raise TimeoutError(f"writing {file} timed out")
        if not result.ok:
            why = result.stderr_text.strip()
            if "permission denied" in why.lower():
                raise PermissionError(errno.EACCES, "Permission denied", file)
            raise OSError(errno.EIO, f"appending to the file failed: {why}", file)


@sandboxenv(name="hazmat-local")
class HazmatLocalSandboxEnvironment(HazmatSandboxEnvironment):
    """``hazmat-local``: a bubblewrap sandbox per sample (no daemon). No ``connection()``:
    its namespaces belong to the eval process."""

    backend: ClassVar[str] = "local"

    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        """``inspect sandbox cleanup hazmat-local``: remove the folders and cgroups of local
        sandboxes whose host process died (``id`` is not used)."""
        removed = await asyncio.to_thread(local_cleanup)
        print(f"hazmat-local: removed {len(removed)} leftover(s)")


@sandboxenv(name="hazmat-docker")
class HazmatDockerSandboxEnvironment(HazmatSandboxEnvironment):
    """``hazmat-docker``: a hardened container per sample, through the Docker API
    (``docker compose`` is not needed)."""

    backend: ClassVar[str] = "docker"

    @classmethod
    async def cli_cleanup(cls, id: str | None) -> None:
        """``inspect sandbox cleanup hazmat-docker [ID]``: remove every container, network
        and volume of hazmat run ``id`` (default :data:`DEFAULT_RUN_ID`).

        Raises:
            BackendUnavailableError: the Docker daemon cannot be reached.
        """
        counts = await asyncio.to_thread(docker_cleanup, id or DEFAULT_RUN_ID)
        print(f"hazmat-docker: removed {counts}")

    @override
    async def connection(self, *, user: str | None = None) -> SandboxConnection:
        """``docker exec -it --user USER <box> bash -l`` (``USER`` defaults to ``spec.user``).

        Raises:
            ConnectionError: the sandbox is not running.
        """
        container = self.hazmat.info().get("container")
        try:
            ping = await self._run(["true"], timeout=10)
        except SandboxUnavailableError:
            ping = None
        if not container or ping is None or not ping.ok:
            raise ConnectionError("the hazmat-docker sandbox is not running")
        who = user or self.hazmat.spec.user
        command = ["docker", "exec", "-it", "--user", who, str(container), "bash", "-l"]
        return SandboxConnection(
            type="hazmat-docker", command=shlex.join(command), container=str(container)
        )
