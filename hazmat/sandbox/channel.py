"""The host side of the persistent channel to the in-sandbox supervisor, and the
sandbox base that does everything but the lifecycle over it.

Every backend starts ``guest/supervisor.py`` once inside the sandbox and talks to it
through a :class:`Channel`: the local backend over the pipes of the ``bwrap``
process, the Docker backend over a socket attached to the container. Requests
carry ids, so many commands can be in flight at once.

:class:`ChannelSandbox` implements ``exec``, ``shell``, ``read_file``, ``write_file``
and ``monitor_report`` once, over the channel a backend names in :meth:`_route`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import structlog

from hazmat.errors import FileTooLargeError, SandboxClosedError, SandboxError
from hazmat.sandbox.base import ExecResult, Sandbox

__all__ = [
    "Channel",
    "ChannelSandbox",
    "LineReader",
    "Route",
]


STREAM_LIMIT = 256 * 1024 * 1024
"""Largest response line accepted (two 10 MiB streams base64-encoded fit easily)."""

log = structlog.get_logger("hazmat.sandbox.channel")


class LineReader(Protocol):
    """Anything with ``readline()`` like :class:`asyncio.StreamReader`."""

    async def readline(self) -> bytes:
        """Return the next line (with its newline), or ``b""`` at end of stream."""
        ...


class Channel:
    """JSON-lines request/response client for one supervisor.

    ``send`` writes bytes to the supervisor's stdin; ``reader`` yields its stdout
    lines. Call :meth:`start` once, then the typed calls; :meth:`close` fails every
    request still waiting with :class:`SandboxClosedError`.
    """

    def __init__(
        self, send: Callable[[bytes], Awaitable[None]], reader: LineReader, *, name: str = "sandbox"
    ) -> None:
        self._send = send
        self._reader = reader
        self._name = name
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self.hello: dict[str, Any] = {}

    async def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for the supervisor's ready line and start reading responses.

        Raises:
            SandboxError: the supervisor did not say it was ready in time.
        """
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
        except TimeoutError:
            raise SandboxError(
                f"{self._name}: supervisor did not start within {timeout:.0f}s"
            ) from None
        try:
            hello = json.loads(line)
        except ValueError:
            hello = {}
        if not isinstance(hello, dict) or not hello.get("ready"):
            raise SandboxError(
                f"{self._name}: supervisor did not start: {line[:300].decode(errors='replace')!r}"
            )
        self.hello = hello
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        return hello

    async def _read_loop(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    log.warning("channel_garbage", sandbox=self._name, line=line[:200])
                    continue
                fut = self._pending.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("channel_read_error", sandbox=self._name, error=str(exc))
        finally:
            self._fail_pending("the sandbox channel closed")

    def abort(self, why: str = "the sandbox was stopped") -> None:
        """Close at once, without waiting: fail every waiting request with
        :class:`SandboxClosedError` (``why``) and stop reading. Safe in a ``finally``
        that runs while a cancellation is being handled."""
        self._fail_pending(why)
        if self._task is not None:
            self._task.cancel()

    def _fail_pending(self, why: str) -> None:
        self._closed = True
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(SandboxClosedError(f"{self._name}: {why}"))
        self._pending.clear()

    @property
    def closed(self) -> bool:
        """True once the supervisor went away or :meth:`close` was called."""
        return self._closed

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its response.

        Raises:
            SandboxClosedError: the channel is closed or closes while waiting.
        """
        if self._closed or self._task is None:
            raise SandboxClosedError(f"{self._name}: the sandbox is not running")
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        data = json.dumps({"id": rid, "op": op, **fields}, separators=(",", ":")).encode() + b"\n"
        try:
            async with self._lock:
                await self._send(data)
        except (OSError, RuntimeError) as exc:
            self._pending.pop(rid, None)
            raise SandboxClosedError(f"{self._name}: cannot write to the sandbox: {exc}") from exc
        return await fut

    async def exec(
        self,
        argv: list[str],
        *,
        timeout: float,
        cap: int,
        stdin: bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        uid: int | None = None,
        gid: int | None = None,
        agent: bool = False,
    ) -> ExecResult:
        """Run ``argv`` in a fresh process (see :meth:`Sandbox.exec`). ``agent``: the
        agent's own command (run as the agent would); otherwise the harness's, which the
        supervisor runs clean (fixed PATH and environment, cwd ``/`` unless given,
        python ``-I``; see ``guest/serve.py``)."""
        msg = await self._guarded(
            timeout,
            self.request(
                "exec",
                argv=argv,
                timeout=timeout,
                cap=cap,
                cwd=cwd,
                env=env,
                uid=uid,
                gid=gid,
                agent=agent,
                stdin=base64.b64encode(stdin).decode() if stdin else None,
            ),
        )
        return self._result(msg)

    async def shell(
        self,
        command: str,
        *,
        timeout: float,
        cap: int,
        uid: int | None = None,
        gid: int | None = None,
    ) -> ExecResult:
        """Run ``command`` in the persistent shell session (of ``uid``, when given)."""
        fields: dict[str, Any] = {"command": command, "timeout": timeout, "cap": cap}
        if uid is not None:
            fields.update(uid=uid, gid=gid)
        msg = await self._guarded(timeout, self.request("shell", **fields))
        return self._result(msg)

    async def read_file(
        self, path: str, *, cap: int, uid: int | None = None, gid: int | None = None
    ) -> bytes:
        """Read a file byte-exact (see :meth:`Sandbox.read_file`), as ``uid`` when given."""
        fields: dict[str, Any] = {"path": path, "cap": cap}
        if uid is not None:
            fields.update(uid=uid, gid=gid)
        msg = self._check(await self.request("read_file", **fields), path)
        return base64.b64decode(msg["data"])

    async def write_file(
        self,
        path: str,
        data: bytes,
        *,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        """Write a file byte-exact (see :meth:`Sandbox.write_file`), as ``uid`` when given."""
        fields: dict[str, Any] = {
            "path": path,
            "data": base64.b64encode(data).decode(),
            "mode": mode,
        }
        if uid is not None:
            fields.update(uid=uid, gid=gid)
        self._check(await self.request("write_file", **fields), path)

    async def monitor(
        self, *, roots: list[str], since: str | None, max_files: int, watch: list[str]
    ) -> str:
        """The supervisor's in-process monitor report (``guest/monitor.py``).

        Raises:
            SandboxError: the supervisor failed, or is older than the op (a stale image).
        """
        msg = await self._guarded(
            30.0,
            self.request("monitor", roots=roots, since=since, max_files=max_files, watch=watch),
        )
        if msg.get("error") == "bad_request" and "unknown op" in str(msg.get("message")):
            raise SandboxError(
                f"{self._name}: the sandbox's supervisor is older than this hazmat "
                "(it has no monitor report)",
                hint="run: hazmat image build",
            )
        if not msg.get("ok"):
            raise SandboxError(f"{self._name}: {msg.get('error')}: {msg.get('message')}")
        return str(msg["text"])

    async def close(self) -> None:
        """Stop reading and fail every waiting request (:meth:`abort`), then wait until the
        reader has stopped. Idempotent; never raises."""
        self.abort()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _guarded(self, timeout: float, coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        # The supervisor enforces the timeout itself; this guards against a wedged channel.
        try:
            return await asyncio.wait_for(coro, timeout + 30.0)
        except TimeoutError:
            raise SandboxError(f"{self._name}: the sandbox stopped answering") from None

    def _check(self, msg: dict[str, Any], path: str) -> dict[str, Any]:
        if msg.get("ok"):
            return msg
        kind, text = msg.get("error"), msg.get("message", "")
        if kind == "not_found":
            raise FileNotFoundError(f"{path}: no such file in the sandbox")
        if kind == "permission":
            raise PermissionError(f"{path}: permission denied in the sandbox")
        if kind == "is_directory":
            raise IsADirectoryError(f"{path}: is a directory")
        if kind == "too_large":
            raise FileTooLargeError(text)
        if kind == "os_error":
            raise OSError(f"{path}: {text}")
        raise SandboxError(f"{self._name}: {kind}: {text}")

    def _result(self, msg: dict[str, Any]) -> ExecResult:
        if not msg.get("ok"):
            raise SandboxError(f"{self._name}: {msg.get('error')}: {msg.get('message')}")
        return ExecResult(
            exit_code=int(msg["exit_code"]),
            stdout=base64.b64decode(msg["stdout"]),
            stderr=base64.b64decode(msg["stderr"]),
            duration=float(msg["duration"]),
            timed_out=bool(msg["timed_out"]),
            truncated=bool(msg["truncated"]),
            stdout_total=int(msg["stdout_total"]),
            stderr_total=int(msg["stderr_total"]),
        )


class Route(NamedTuple):
    """Where a request goes: the channel, and the uid/gid the supervisor drops to for it
    (None: the supervisor's own user, i.e. root of the sandbox)."""

    channel: Channel
    uid: int | None = None
    gid: int | None = None


class ChannelSandbox(Sandbox):
    """A sandbox whose commands and files go through hazmat's supervisor.

    A backend implements the lifecycle, ``snapshot`` and :meth:`_route` (which channel
    and which ids a request of a user, in a service, goes to); everything else is here,
    once. :meth:`_command_env` lets a backend add to a command's environment.
    """

    @abstractmethod
    async def _route(self, user: str | None, service: str | None) -> Route:
        """The route of a request made as ``user`` (None: ``spec.user``; ``"root"``: root
        of the sandbox) in ``service`` (None: the agent's box).

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: no such service or user.
        """

    def _command_env(self, user: str | None, env: dict[str, str] | None) -> dict[str, str] | None:
        """The extra environment of a command run as ``user`` (default: ``env`` as given)."""
        return env

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
        """Run one command in a fresh process (see :meth:`Sandbox.exec`).

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: an empty command, no such service, or the channel broke.
        """
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if not argv:
            raise SandboxError("exec needs a non-empty command")
        route = await self._route(user, service)
        return await route.channel.exec(
            argv,
            timeout=timeout or self.spec.limits.exec_timeout,
            cap=self.spec.limits.output_bytes,
            stdin=stdin,
            cwd=cwd,
            env=self._command_env(user, env),
            uid=route.uid,
            gid=route.gid,
            agent=user is None,
        )

    async def shell(self, command: str, *, timeout: float | None = None) -> ExecResult:
        """Run ``command`` in the persistent bash session of ``spec.user``."""
        route = await self._route(None, None)
        return await route.channel.shell(
            command,
            timeout=timeout or self.spec.limits.exec_timeout,
            cap=self.spec.limits.output_bytes,
            uid=route.uid,
            gid=route.gid,
        )

    async def read_file(
        self, path: str, *, user: str | None = None, service: str | None = None
    ) -> bytes:
        """Read a file as ``user`` (see :meth:`Sandbox.read_file`), byte-exact."""
        route = await self._route(user, service)
        return await route.channel.read_file(
            path, cap=self.spec.limits.file_bytes, uid=route.uid, gid=route.gid
        )

    async def write_file(
        self, path: str, data: bytes, *, mode: int | None = None, user: str | None = None
    ) -> None:
        """Write a file as ``user`` (see :meth:`Sandbox.write_file`), byte-exact."""
        cap = self.spec.limits.file_bytes
        if len(data) > cap:
            raise FileTooLargeError(f"{path}: {len(data)} bytes is over the cap of {cap} bytes")
        route = await self._route(user, None)
        try:
            await route.channel.write_file(path, data, mode=mode, uid=route.uid, gid=route.gid)
        except OSError as exc:
            if "Read-only file system" in str(exc):
                raise PermissionError(f"{path}: read-only file system in the sandbox") from None
            raise

    async def monitor_report(
        self, *, roots: list[str], since: str | None, max_files: int, watch: list[str]
    ) -> str:
        """The supervisor's in-process monitor report, read as root of the sandbox."""
        route = await self._route("root", None)
        return await route.channel.monitor(
            roots=roots, since=since, max_files=max_files, watch=watch
        )
