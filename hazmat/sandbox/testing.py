"""The conformance suite every sandbox backend passes (as Inspect ships ``self_check``).

Run it on a backend by name (registered, see :mod:`hazmat.sandbox.registry`) or class::

    from hazmat.sandbox.testing import self_check
    results = await self_check("local")      # {"exec": None, "timeout": None, ...}

A value of None means the check passed; otherwise it is why it failed (or
``"skipped: ..."``). In a test suite, parametrise over :data:`CHECKS` and call
:func:`run_check` (hazmat's own ``tests/sandbox/test_conformance.py`` does, for every
registered backend, so a backend added later is checked for free).

Each check makes its own sandboxes, bounded in time, and after stopping them asks each
whether anything of it is left (:meth:`Sandbox.leftovers`). What is checked:

=================  ======================================================================
exec               argv and ``sh -c`` strings, stdin, cwd, env, the default user is
                   ``spec.user`` and ``user="root"`` is uid 0
exit-codes         exit codes come back as they are; ``ok`` means 0 and no timeout
not-found          a missing command exits 127, in ``exec`` and in ``shell``
timeout            a timeout kills the whole tree, detached (``setsid``) children too:
                   exit 124, ``timed_out``, bounded wall time, nothing left running
output-cap         each stream is capped at ``limits.output_bytes``, flagged
                   ``truncated``, with the full count in ``stdout_total``
files              binary-safe ``write_file``/``read_file`` (every byte value), modes,
                   parent folders, the file cap both ways, missing file, folder
users              the agent cannot read root's 0600 file nor write ``/etc``; root can
                   (skipped where ``info()["uid_separation"]`` is False)
shell              cwd, exported and plain variables, functions, aliases carry over;
                   a timed-out shell command does not break the session
limits             a fork bomb and a memory bomb are stopped, a file over
                   ``file_size_mb`` is refused; the sandbox still answers
no-network         only ``lo``; nothing on the host is reachable (a listener on every
                   host address sees no connection)
cleanup            normal exit, an exception, a cancelled command, a failing setup, a
                   double stop: nothing left; calls after stop raise SandboxClosedError
snapshot           ``snapshot()`` writes ``changes.json``/``changes.tar`` with what the
                   agent wrote
monitor            ``monitor_report()`` has every section, shows a new file (owned by the
                   agent), a watched file's size and the supervisor's process
sentinel           ``spec.sentinel`` on (the default): a sentinel runs, a lookup is
                   recorded once
freeze             :class:`Freezable`: ``processes()`` lists them; frozen, a snapshot works
pool               :class:`Poolable`: a bare sandbox adopts a spec (files, setup)
detach             :class:`Detachable`: a detached sandbox survives ``stop()`` and
                   ``cleanup(run_id)`` removes it
=================  ======================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hazmat.errors import FileTooLargeError, SandboxClosedError, SandboxStartError
from hazmat.sandbox.base import (
    Detachable,
    Freezable,
    Limits,
    Poolable,
    Sandbox,
    SandboxSpec,
    lacks,
)
from hazmat.sandbox.registry import get_backend

__all__ = ["CHECKS", "Check", "ConformanceError", "Harness", "run_check", "self_check"]

CHECK_TIMEOUT = 180.0


class ConformanceError(AssertionError):
    """A backend broke a rule of the protocol (the message says which)."""


def expect(condition: object, message: str) -> None:
    """Raise :class:`ConformanceError` with ``message`` unless ``condition``."""
    if not condition:
        raise ConformanceError(message)


class Skip(Exception):
    """The check does not apply to this backend (the message says why)."""


class Harness:
    """Makes sandboxes of one backend for the checks and proves each left nothing."""

    def __init__(self, backend: str | type[Sandbox], tmp: Path) -> None:
        self.cls = get_backend(backend) if isinstance(backend, str) else backend
        self.tmp = tmp
        self.run_id = f"conformance-{uuid.uuid4().hex[:8]}"
        self.made: list[Sandbox] = []
        self._n = 0

    def new(self, spec: SandboxSpec | None = None, **fields: Any) -> Sandbox:
        """A sandbox (not started) of ``spec`` or ``SandboxSpec(**fields)``."""
        self._n += 1
        sb = self.cls(spec or SandboxSpec(**fields), run_id=self.run_id, episode_id=f"c{self._n}")
        self.made.append(sb)
        return sb

    @contextlib.asynccontextmanager
    async def started(
        self, spec: SandboxSpec | None = None, **fields: Any
    ) -> AsyncIterator[Sandbox]:
        """A started sandbox, stopped on the way out."""
        async with self.new(spec, **fields) as sb:
            yield sb

    async def close(self) -> None:
        """Stop every sandbox made; each must have left nothing behind."""
        for sb in self.made:
            await sb.stop()
        for sb in self.made:
            left = await sb.leftovers()
            expect(not left, f"{sb.episode_id}: left behind after stop(): {left}")


@dataclass(frozen=True)
class Check:
    """One rule of the protocol."""

    name: str
    run: Callable[[Harness], Awaitable[None]]
    feature: type | None = None
    """An optional feature the check needs (skipped on backends without it)."""


async def run_check(check: Check, backend: str | type[Sandbox], tmp: Path) -> str | None:
    """Run one check; None when it passed, ``"skipped: ..."`` when it does not apply.

    Raises:
        ConformanceError: the backend broke the rule.
        HazmatError: a sandbox could not be made or used.
    """
    harness = Harness(backend, tmp)
    if check.feature is not None and not issubclass(harness.cls, check.feature):
        return f"skipped: the {harness.cls.backend} backend is not {check.feature.__name__}"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            try:
                await check.run(harness)
            finally:
                await harness.close()
    except Skip as why:
        return f"skipped: {why}"
    return None


async def self_check(
    backend: str | type[Sandbox], tmp: Path | None = None, *, only: list[str] | None = None
) -> dict[str, str | None]:
    """Run every check (or those named in ``only``); name -> None when passed, else why
    it failed or was skipped."""
    import tempfile

    out: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="hazmat-conformance-") as scratch:
        for check in CHECKS:
            if only is not None and check.name not in only:
                continue
            try:
                out[check.name] = await run_check(check, backend, tmp or Path(scratch))
            except Exception as exc:
                out[check.name] = f"{type(exc).__name__}: {exc}"
    return out


# the checks --------------------------------------------------------------------------


async def _exec(h: Harness) -> None:
    async with h.started(env={"HZ_TASK": "from-spec"}) as sb:
        r = await sb.exec(["echo", "hi there"])
        expect(r.ok and r.stdout == b"hi there\n" and r.stderr == b"", f"argv exec: {r}")
        r = await sb.exec("echo $((6 * 7)) >&2; printf out")
        expect(r.stdout == b"out" and r.stderr == b"42\n", f"a string runs with sh -c: {r}")
        r = await sb.exec(["cat"], stdin=b"in\x00put")
        expect(r.stdout == b"in\x00put", f"stdin is passed byte-exact: {r.stdout!r}")
        r = await sb.exec(["sh", "-c", "pwd; echo $HZ_X $HZ_TASK"], cwd="/tmp", env={"HZ_X": "1"})
        expect(r.stdout_text == "/tmp\n1 from-spec\n", f"cwd, env, spec.env: {r.stdout_text!r}")
        r = await sb.exec(["id", "-un"])
        expect(r.stdout_text.strip() == sb.spec.user, f"the default user: {r.stdout_text!r}")
        r = await sb.exec(["id", "-u"], user="root")
        expect(r.stdout_text.strip() == "0", f'user="root" is uid 0: {r.stdout_text!r}')


async def _exit_codes(h: Harness) -> None:
    async with h.started() as sb:
        for code in (0, 1, 3, 127, 255):
            r = await sb.exec(["sh", "-c", f"exit {code}"])
            expect(r.exit_code == code and r.ok == (code == 0), f"exit {code}: {r}")
        r = await sb.exec(["sh", "-c", "kill -9 $$"])
        expect(r.exit_code != 0 and not r.ok, f"killed by a signal: {r}")


async def _not_found(h: Harness) -> None:
    async with h.started() as sb:
        r = await sb.exec(["no-such-command-hz"])
        expect(r.exit_code == 127, f"a missing argv[0] exits 127: {r}")
        r = await sb.exec("no-such-command-hz")
        expect(r.exit_code == 127, f"a missing command in sh -c exits 127: {r}")
        r = await sb.shell("no-such-command-hz")
        expect(r.exit_code == 127, f"a missing command in the shell exits 127: {r}")


_SLEEPERS = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null"


async def _timeout(h: Harness) -> None:
    async with h.started() as sb:
        t0 = time.monotonic()
        r = await sb.exec(
            "setsid sleep 1001 & (setsid sh -c 'sleep 1002' &) ; sleep infinity", timeout=2
        )
        took = time.monotonic() - t0
        expect(r.timed_out and r.exit_code == 124, f"exit 124 and timed_out: {r}")
        expect(took < 15, f"the timeout is kept: returned after {took:.1f}s")
        await asyncio.sleep(0.3)
        left = (await sb.exec(["sh", "-c", _SLEEPERS], user="root")).stdout_text
        expect(not re.search(r"sleep 100[12]", left), f"detached children survived: {left}")
        r = await sb.shell("sleep 1003", timeout=1)
        expect(r.timed_out and r.exit_code == 124, f"a shell command times out: {r}")
        left = (await sb.exec(["sh", "-c", _SLEEPERS], user="root")).stdout_text
        expect("sleep 1003" not in left, f"the shell command survived: {left}")


async def _output_cap(h: Harness) -> None:
    cap = 64 * 1024
    async with h.started(limits=Limits(output_bytes=cap)) as sb:
        r = await sb.exec(["sh", "-c", "head -c 200000 /dev/zero; head -c 100000 /dev/zero >&2"])
        expect(r.ok and r.truncated, f"over the cap is flagged truncated: {r.truncated}")
        expect(len(r.stdout) == cap and r.stdout_total == 200000, "stdout capped, counted")
        expect(len(r.stderr) == cap and r.stderr_total == 100000, "stderr capped, counted")
        r = await sb.exec(["yes"], timeout=1.5)
        expect(r.timed_out and len(r.stdout) == cap and r.stdout.startswith(b"y\ny\n"), "yes")
        r = await sb.shell("head -c 100 /dev/zero")
        expect(not r.truncated and r.stdout_total == 100, f"under the cap: {r}")


async def _files(h: Harness) -> None:
    async with h.started(limits=Limits(file_bytes=1 << 20)) as sb:
        data = bytes(range(256)) * 1000 + os.urandom(4096)
        home = sb.spec.workdir
        await sb.write_file(f"{home}/deep/er/blob.bin", data, mode=0o640)
        expect(await sb.read_file(f"{home}/deep/er/blob.bin") == data, "read_file round trip")
        r = await sb.exec(["sha256sum", f"{home}/deep/er/blob.bin"])
        expect(r.stdout_text.split()[:1] == [hashlib.sha256(data).hexdigest()], "bytes inside")
        r = await sb.exec(["stat", "-c", "%a %U", f"{home}/deep/er/blob.bin"])
        expect(r.stdout_text.split() == ["640", sb.spec.user], f"mode, owner: {r.stdout_text}")
        with _raises(FileNotFoundError, "read_file of a missing file"):
            await sb.read_file(f"{home}/nope")
        with _raises(IsADirectoryError, "read_file of a folder"):
            await sb.read_file(home)
        with _raises(FileTooLargeError, "write_file over limits.file_bytes"):
            await sb.write_file("/tmp/big", b"x" * ((1 << 20) + 1))
        await sb.exec(["sh", "-c", "head -c 1100000 /dev/zero > /tmp/big2"])
        with _raises(FileTooLargeError, "read_file over limits.file_bytes"):
            await sb.read_file("/tmp/big2")
        await sb.exec(["mkfifo", "/tmp/fifo"])
        with _raises(OSError, "read_file of a FIFO (must not wedge)"):
            await sb.read_file("/tmp/fifo")
        expect((await sb.exec(["true"])).ok, "still answering after the FIFO")


async def _users(h: Harness) -> None:
    async with h.started(files={"/root/secret": {"content": "S", "mode": 0o600}}) as sb:
        if sb.info().get("uid_separation") is False:
            raise Skip("this sandbox runs root and the agent as one uid")
        with _raises(PermissionError, "the agent reading root's 0600 file"):
            await sb.read_file("/root/secret")
        expect(await sb.read_file("/root/secret", user="root") == b"S", "root reads it")
        r = await sb.exec(["cat", "/root/secret"])
        expect(r.exit_code != 0 and b"S" not in r.stdout, f"cat as the agent: {r}")
        with _raises(PermissionError, "the agent writing /etc"):
            await sb.write_file("/etc/hazmat-evil", b"x")
        r = await sb.exec(["sh", "-c", "grep ^CapEff /proc/self/status"])
        expect(r.stdout_text.split()[-1:] == ["0000000000000000"], f"agent caps: {r.stdout_text}")


async def _shell(h: Harness) -> None:
    async with h.started() as sb:
        r = await sb.shell(
            "mkdir -p /tmp/w && cd /tmp/w && export HZ_E=exported && HZ_P=plain && "
            "greet() { echo hello $1; } && alias hzll='echo aliased'"
        )
        expect(r.ok, f"setting state: {r}")
        r = await sb.shell("pwd; echo $HZ_E $HZ_P; greet you; hzll; sh -c 'echo $HZ_E'")
        want = ["/tmp/w", "exported plain", "hello you", "aliased", "exported"]
        expect(r.stdout_text.splitlines() == want, f"state carried over: {r.stdout_text!r}")
        expect((await sb.shell("false")).exit_code == 1, "the shell's exit code")
        r = await sb.shell("cd /; sleep 30", timeout=1)
        expect(r.timed_out, "a shell command times out")
        r = await sb.shell("echo $HZ_E")
        expect(r.ok and r.stdout_text == "exported\n", f"the session survives: {r}")


async def _limits(h: Harness) -> None:
    limits = Limits(pids=64, memory_mb=128, file_size_mb=1)
    async with h.started(limits=limits) as sb:
        r = await sb.exec("bomb() { bomb | bomb & }; bomb; sleep 3", timeout=5)
        stopped = r.timed_out or r.exit_code != 0 or b"fork" in r.stderr.lower()
        expect(stopped, f"the fork bomb was stopped: {r.exit_code} {r.stderr[-300:]!r}")
        r = await sb.exec(["echo", "alive"], timeout=30)
        expect(r.ok and r.stdout == b"alive\n", f"answering after the fork bomb: {r}")
        eat = "a = bytearray(512 << 20); a[::4096] = b'x' * len(a[::4096]); print('survived')"
        r = await sb.exec(["python3", "-c", eat], timeout=30)
        expect(r.exit_code != 0 and b"survived" not in r.stdout, f"the memory bomb: {r}")
        r = await sb.exec("head -c 3000000 /dev/zero > /tmp/big; stat -c %s /tmp/big")
        size = int((r.stdout_text.split() or ["0"])[-1])
        expect(r.exit_code != 0 or size <= 1 << 20, f"a 3 MB file under file_size_mb=1: {size}")
        expect((await sb.exec(["true"])).ok, "answering after the bombs")


def _host_addresses() -> list[str]:
    """Every IPv4 address of this host (``/proc/net/fib_trie``'s local ones)."""
    out: set[str] = {"127.0.0.1"}
    with contextlib.suppress(OSError):
        last = ""
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["|--"]:
                last = parts[1]
            elif "/32 host LOCAL" in line and last:
                out.add(last)
    return sorted(out)


async def _no_network(h: Harness) -> None:
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        async with h.started() as sb:
            r = await sb.exec(["cat", "/proc/net/dev"])
            ifaces = [ln.split(":")[0].strip() for ln in r.stdout_text.splitlines()[2:]]
            expect(ifaces == ["lo"], f"only lo: {ifaces}")
            for addr in _host_addresses():
                probe = (
                    "import socket\ns = socket.socket(); s.settimeout(2)\n"
                    f"try:\n s.connect(({addr!r}, {port})); s.send(b'x'); print('sent')\n"
                    "except OSError as e: print('no', e)\n"
                )
                await sb.exec(["python3", "-c", probe], timeout=20)
        with contextlib.suppress(BlockingIOError):
            conn, peer = listener.accept()
            conn.close()
            raise ConformanceError(f"the sandbox reached the host's listener from {peer}")
    finally:
        listener.close()


async def _cleanup(h: Harness) -> None:
    async with h.started() as sb:  # normal exit
        expect((await sb.exec(["true"])).ok, "a command")
    with contextlib.suppress(RuntimeError):
        async with h.started():  # an exception
            raise RuntimeError("boom")
    cancelled = h.new()
    async with cancelled:
        task = asyncio.ensure_future(cancelled.exec(["sleep", "1000"]))
        await asyncio.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SandboxClosedError):
            await task
    failing = h.new(setup=["true", "echo broken-thing >&2; exit 3"])
    with _raises(SandboxStartError, "a failing setup command"):
        async with failing:
            pass
    twice = h.new()
    await twice.start()
    await twice.stop()
    await twice.stop()
    with _raises(SandboxClosedError, "exec after stop"):
        await twice.exec(["true"])
    with _raises(SandboxClosedError, "read_file after stop"):
        await twice.read_file("/etc/passwd")
    await h.close()  # every path left nothing


async def _snapshot(h: Harness) -> None:
    async with h.started() as sb:
        home = sb.spec.workdir
        await sb.exec(["sh", "-c", f"echo loot > {home}/loot.txt; mkdir -p /tmp/d/e"])
        info = await sb.snapshot(h.tmp / f"snap-{h.run_id}")
        expect(f"{home}/loot.txt" in info.changed, f"changed lists the new file: {info.changed}")
        expect((info.path / "changes.json").is_file(), "changes.json")
        json.loads((info.path / "changes.json").read_text())
        with tarfile.open(info.path / "changes.tar") as tar:
            member = tar.extractfile(f"{home.lstrip('/')}/loot.txt")
            expect(member is not None and member.read() == b"loot\n", "the file in changes.tar")
        expect((await sb.exec(["true"])).ok, "running after the snapshot")


def _sections(report: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in report.splitlines():
        if line.startswith("@@"):
            out[line[2:]] = []
        elif out:
            out[list(out)[-1]].append(line)
    return out


async def _monitor(h: Harness) -> None:
    async with h.started() as sb:
        roots, watch = ["/tmp", sb.spec.workdir], [f"{sb.spec.workdir}/audit.log"]
        first = await sb.monitor_report(roots=roots, since=None, max_files=50, watch=watch)
        heads = [ln for ln in first.splitlines() if ln.startswith("@@")]
        want = ["@@now", "@@self", "@@files", "@@watch", "@@tcp", "@@udp", "@@fds", "@@ps"]
        expect(heads == [*want, "@@end"], f"the report's sections: {heads}")
        since = _sections(first)["now"][0]
        await sb.exec(["sh", "-c", f"echo 1 > /tmp/hz-new; echo a > {watch[0]}"])
        rep = _sections(
            await sb.monitor_report(roots=roots, since=since, max_files=50, watch=watch)
        )
        files = {ln.split(" ", 3)[3]: ln.split(" ", 3)[1] for ln in rep["files"]}
        expect(files.get("/tmp/hz-new") == sb.spec.user, f"the new file: {files}")
        sizes = {ln.split(" ", 4)[4]: ln.split(" ", 4)[0] for ln in rep["watch"]}
        expect(sizes.get(watch[0]) == "2", f"the watched file: {sizes}")
        expect(any("supervisor" in ln for ln in rep["ps"]), f"the supervisor in @@ps: {rep}")


async def _sentinel(h: Harness) -> None:
    async with h.started() as sb:
        expect(sb.sentinel is not None, f"sentinel on, none runs: {sb.info().get('sentinel')}")
        await sb.network_events()
        await sb.exec(["getent", "hosts", "conformance.hazmat.example"])
        events = await sb.network_events() or []
        names = [e.get("name") for e in events if e.get("type") == "dns"]
        expect("conformance.hazmat.example" in names, f"the lookup was recorded: {events}")
        expect(await sb.network_events() == [], "events are drained once")


async def _freeze(h: Harness) -> None:
    async with h.started() as sb:
        if not isinstance(sb, Freezable):
            raise ConformanceError(lacks(sb, Freezable))
        frozen: Freezable = sb
        await sb.exec("sleep 1000 >/dev/null 2>&1 &")
        procs = await frozen.processes() or []
        expect(any("sleep 1000" in p["cmdline"] for p in procs), f"processes: {procs}")
        expect(all(set(p) >= {"pid", "ppid", "user", "state", "cmdline"} for p in procs), "keys")
        await frozen.freeze()
        expect(await frozen.processes(), "processes() of a frozen sandbox")
        info = await sb.snapshot(h.tmp / f"frozen-{h.run_id}")
        expect((info.path / "changes.tar").is_file(), "a snapshot of a frozen sandbox")


async def _pool(h: Harness) -> None:
    assert issubclass(h.cls, Poolable)
    spec = SandboxSpec(files={"/tmp/task.txt": "for this episode"}, setup=["touch /tmp/setup"])
    expect(h.cls.poolable(spec), "a spec with files under /tmp is poolable")
    bare = h.new(spec.model_copy(update={"files": {}, "setup": []}))
    async with bare:
        if not isinstance(bare, Poolable):
            raise ConformanceError(lacks(bare, Poolable))
        await bare.adopt(spec, episode_id="adopted")
        r = await bare.exec(["sh", "-c", "cat /tmp/task.txt; echo; test -e /tmp/setup && echo ok"])
        expect(r.stdout_text == "for this episode\nok\n", f"files and setup: {r.stdout_text!r}")


async def _detach(h: Harness) -> None:
    sb = h.new()
    await sb.start()
    if not isinstance(sb, Detachable):
        raise ConformanceError(lacks(sb, Detachable))
    handle = await sb.detach()
    expect(isinstance(handle, str) and handle, f"a handle: {handle!r}")
    await sb.stop()  # does nothing now
    expect(await sb.leftovers(), "the detached sandbox outlived stop()")
    counts = h.cls.cleanup(run_id=h.run_id)
    expect(sum(counts.values()) >= 1, f"cleanup(run_id) removed it: {counts}")


CHECKS: tuple[Check, ...] = (
    Check("exec", _exec),
    Check("exit-codes", _exit_codes),
    Check("not-found", _not_found),
    Check("timeout", _timeout),
    Check("output-cap", _output_cap),
    Check("files", _files),
    Check("users", _users),
    Check("shell", _shell),
    Check("limits", _limits),
    Check("no-network", _no_network),
    Check("cleanup", _cleanup),
    Check("snapshot", _snapshot),
    Check("monitor", _monitor),
    Check("sentinel", _sentinel),
    Check("freeze", _freeze, Freezable),
    Check("pool", _pool, Poolable),
    Check("detach", _detach, Detachable),
)


@contextlib.contextmanager
def _raises(kind: type[BaseException], what: str) -> Any:
    try:
        yield
    except kind:
        return
    except Exception as exc:
        raise ConformanceError(
            f"{what}: raised {type(exc).__name__}: {exc}, not {kind.__name__}"
        ) from exc
    raise ConformanceError(f"{what}: did not raise {kind.__name__}")
