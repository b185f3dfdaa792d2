"""The local backend: one bubblewrap sandbox per episode, no daemon needed. What is
inside is drawn in :mod:`.plan` (the bwrap command line); the host folder behind it in
:mod:`.folders`.

Users. Run as root on the host (CI, this lab's machines), the sandbox gets a user
namespace of its own whose ids 0..65535 map to an unused host range (:mod:`.ids`,
made by :mod:`.launcher`). The supervisor is root *of that namespace* (kept caps:
chown, dac_override, dac_read_search, fowner, fsetid, kill, setuid, setgid; none of
them counts against host objects, which are owned by unmapped ids). Agent commands,
the shell, and file ops of the agent drop to uid/gid 1000 (``agent``), so root-owned
files such as ``/root/flag.txt`` (mode 0600) stay closed to it; ``exec(user="root")``
(setup, scorers) runs as the namespace's root. Nested user namespaces are disabled.
Run as a normal user, bwrap can map one id only: agent and root are then the same
uid (``info()["uid_separation"]`` is False and a warning is logged).

Limits are rlimits set by the supervisor and inherited by every process: processes
(``RLIMIT_NPROC``, counted per uid *inside this user namespace*, so a fork bomb is
stopped at ``limits.pids`` without touching the host's counts), address space per
process (``limits.memory_mb``), CPU seconds per process, file size, no core dumps.
As root, each sandbox also gets its own cgroups (:mod:`.cgroups`; best effort) bounding
the *sum*: memory (``memory_mb`` plus room for the supervisor's file transfers),
processes (``pids`` + 64) and CPU (``limits.cpus``), and its processes get
``oom_score_adj`` 500 so host memory pressure kills them first. A seccomp filter
(:mod:`.seccomp`) denies what Docker's default profile denies and no task needs.
Network: a fresh namespace with only ``lo``, watched by the network sentinel (a host
process that joins it with ``setns`` as soon as the namespace exists, while the
supervisor starts).
Environment: cleared (no host variable).

Disk: as root, the writable dirs together live on a filesystem image of their own
(:mod:`.disk`, :func:`~.disk.disk_bytes`); otherwise ``limits.file_size_mb`` caps each
file only (``info()["disk"]`` says which). Halt snapshots (:meth:`LocalSandbox.snapshot`)
freeze the whole sandbox with the cgroup freezer (:mod:`.freezer`) and read its files
beneath their folders without following a symlink (:mod:`.beneath`). Tasks that need a
writable system (``chmod u+s /usr/bin/find``), services, extra capabilities or a
network need ``--sandbox docker``; such specs are refused with a clear error.

Lifecycle: ``stop()`` SIGKILLs the namespace's pid 1 (which takes every sandbox
process along), reaps bwrap, removes cgroups and folders. If the host process is
itself killed, ``--die-with-parent`` still kills the sandbox; the folders and
cgroups it leaves are removed by :func:`cleanup_leftovers` (for ``hazmat cleanup``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, ClassVar

import structlog

from hazmat.errors import (
    SandboxClosedError,
    SandboxError,
    SandboxStartError,
)
from hazmat.sandbox.base import Freezable, SandboxSpec, SnapshotInfo
from hazmat.sandbox.channel import Channel, ChannelSandbox, Route
from hazmat.sandbox.local.cgroups import CGROUP_PREFIX, make_cgroups, remove_cgroups
from hazmat.sandbox.local.folders import Backing, cleanup_leftovers
from hazmat.sandbox.local.freezer import Freezer, continue_each, make_freezer, stop_each
from hazmat.sandbox.local.host import (
    DIR_PREFIX,
    bwrap_binary,
    bwrap_version,
    sandbox_parent,
    shared_files,
    start_error,
)
from hazmat.sandbox.local.ids import IdMap
from hazmat.sandbox.local.leftovers import cleanup_run
from hazmat.sandbox.local.limits import CgroupLimits
from hazmat.sandbox.local.plan import (
    GUEST_IN,
    Plan,
    bwrap_args,
    check_spec,
    home_of,
    supervisor_command,
)
from hazmat.sandbox.local.seccomp import seccomp_filter
from hazmat.sandbox.local.snapshot import (
    Listing,
    descendants,
    listing,
    pids_in_namespace,
    processes,
)
from hazmat.sandbox.local.snapshot import save_snapshot as _save_snapshot
from hazmat.sandbox.local.spawn import join_cgroups, spawn_bwrap
from hazmat.sandbox.local.system import SystemRoot, held_system_root
from hazmat.sandbox.local.teardown import kill_now, kill_sandbox
from hazmat.sandbox.netwatch import spawn_sentinel
from hazmat.sandbox.rootfs import HOST
from hazmat.sandbox.rootfs_prune import TreeUse

__all__ = [
    "LocalSandbox",
    "bwrap_binary",
    "bwrap_version",
    "cleanup_leftovers",
    "seccomp_filter",
]

log = structlog.get_logger("hazmat.sandbox.local")

_MAKER = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="hazmat-backing")
"""Makes backing folders (their filesystem's mount waits on I/O) while bwrap starts."""


class LocalSandbox(ChannelSandbox, Freezable, CgroupLimits):
    """A bubblewrap sandbox with a persistent supervisor channel (see the module doc)."""

    backend: ClassVar[str] = "local"

    def __init__(
        self, spec: SandboxSpec, *, run_id: str = "adhoc", episode_id: str = "adhoc"
    ) -> None:
        super().__init__(spec, run_id=run_id, episode_id=episode_id)
        self._ids = IdMap(False, 0, spec.user)
        self._backing: Backing | None = None
        self._backing_job: concurrent.futures.Future[None] | None = None
        self._made: list[Path] = []
        """Every folder made on the host (backing folder, cgroups), for :meth:`leftovers`."""
        self._stopped_at = 0.0
        self._dir: Path | None = None
        """The backing folder while the sandbox exists (None once stopped)."""
        self._proc: asyncio.subprocess.Process | None = None
        self._channel: Channel | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr = bytearray()
        self._info_r: int | None = None
        self._child_pid: int | None = None
        self._sentinel_proc: asyncio.subprocess.Process | None = None
        self._sentinel_problem = "off" if not spec.sentinel else ""
        self._pidns = ""
        self._info_buf = b""
        self._cgroups: list[Path] = []
        self._frozen = False
        self._frozen_pids: set[int] = set()
        self._freezer: Freezer | None = None
        self._freezer_problem = "not root of the host"
        self._cgroup_name = ""
        self._baseline: Listing = {}
        self._python = ""
        self._root = SystemRoot(HOST, None, (), HOST)
        self._use = TreeUse()
        """The shared "in use" lock of the tree it runs on, from start to stop."""
        self._stopped = False
        self._started = False
        self._log = log.bind(run_id=run_id, episode_id=episode_id)

    @property
    def home(self) -> str:
        """HOME of ``spec.user``."""
        return home_of(self.spec.user)

    # lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Make the sandbox: backing dirs, files, bwrap + supervisor, setup as root.

        Raises:
            BackendUnavailableError: bubblewrap or namespaces are not usable here.
            SandboxStartError: the spec needs Docker (services, network, caps), a file
                cannot be placed, or a setup command failed.
        """
        if self._stopped or self._started:
            raise SandboxClosedError("a local sandbox cannot be started twice")
        self._started = True
        t0 = time.monotonic()
        try:
            check_spec(self.spec)
            self._root = await asyncio.to_thread(held_system_root, self.spec, self._use)
            try:
                self._prepare()  # sync so a cancel cannot leak cgroups
            except OSError as exc:
                raise SandboxStartError(f"cannot prepare the sandbox: {exc}") from exc
            self._backing_job = _MAKER.submit(self._make_backing)
            # The sentinel starts first: it is ready to join the network namespace as soon
            # as bwrap made it; the agent's first command comes after it was set up.
            watch = asyncio.ensure_future(self._start_sentinel()) if self.spec.sentinel else None
            try:
                await self._launch()
                assert self._backing is not None
                self._backing.release_host()  # bwrap has bound the writable dirs
                if watch is not None:
                    await watch
            except BaseException:
                if watch is not None:
                    watch.cancel()
                    with contextlib.suppress(BaseException):
                        await watch
                raise
            for command in self.spec.setup:
                result = await self.exec(["/bin/sh", "-c", command], user="root")
                if not result.ok:
                    why = "timed out" if result.timed_out else f"exit {result.exit_code}"
                    err = (result.stderr_text or result.stdout_text).strip()[-800:]
                    raise SandboxStartError(f"setup command failed ({why}): {command}: {err}")
            assert self._backing is not None
            backing = self._backing
            self._baseline = await asyncio.to_thread(listing, backing.root_fd, backing.dirs())
        except BaseException:
            await self.stop()
            raise
        self._log.info(
            "sandbox_started",
            backend="local",
            ms=round((time.monotonic() - t0) * 1000, 1),
            uid_separation=self._ids.separate,
        )

    def _prepare(self) -> None:
        """Host side: ids and cgroups (the backing folder comes with :meth:`_launch`)."""
        spec = self.spec
        self._ids = ids = IdMap.make(spec.user)
        if not ids.separate:
            self._log.warning(
                "local_sandbox_single_uid",
                reason="not root of the host user namespace: bwrap maps one id only, "
                "so root and agent are the same uid inside",
            )
        self._python = self._root.python(ids.separate)
        if ids.separate:
            limits = spec.limits
            name = f"{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            self._cgroups = make_cgroups(
                name,
                memory=(limits.memory_mb << 20) + 3 * limits.file_bytes + (64 << 20),
                pids=limits.pids + 64,
                cpus=limits.cpus,
            )
            self._cgroup_name, self._freezer_problem = name, ""  # the freezer: on demand
        self._made += self._cgroups

    def _make_backing(self) -> None:
        """The backing folder with the spec's files (in a thread of its own, which
        :meth:`stop` waits for: a cancel cannot leak it).

        Raises:
            SandboxStartError: it cannot be made.
        """
        try:
            backing = Backing.make(self.spec, self._ids, self.episode_id)
        except OSError as exc:
            raise SandboxStartError(f"cannot prepare the sandbox folders: {exc}") from exc
        self._backing, self._dir = backing, backing.root
        self._made.append(backing.root)

    def _plan(self, info_fd: int, guest: Path) -> Plan:
        assert self._backing is not None
        root = self._root
        return Plan(
            spec=self.spec,
            separate=self._ids.separate,
            python=self._python,
            python_prefix=root.python_prefix(self._python),
            etc=self._backing.etc(),
            binds=self._backing.binds(guest, GUEST_IN),
            info_fd=info_fd,
            system=root.entries,
            root=str(root.tree) if root.tree is not None else None,
        )

    async def _launch(self) -> None:
        info_r, info_w = os.pipe()
        self._info_r = info_r
        os.set_blocking(info_r, False)
        # The arguments go through a memfd (--args), so `ps` in the sandbox shows no host paths.
        args_fd = os.memfd_create("hazmat-bwrap-args", 0)
        fds = [info_w, args_fd]
        try:
            shared = shared_files(self._ids.separate)
            program = seccomp_filter()
            seccomp = []
            if program is not None:
                seccomp_fd = os.memfd_create("hazmat-seccomp", 0)
                os.write(seccomp_fd, program)
                os.lseek(seccomp_fd, 0, os.SEEK_SET)
                seccomp = ["--seccomp", str(seccomp_fd)]
                fds.append(seccomp_fd)

            async def write_args() -> None:  # while the namespace joins the cgroups
                assert self._backing_job is not None
                await asyncio.wrap_future(self._backing_job)
                options, _ = bwrap_args(self._plan(info_w, shared.guest))
                os.write(args_fd, b"".join(a.encode() + b"\0" for a in options + seccomp))
                os.lseek(args_fd, 0, os.SEEK_SET)

            command = supervisor_command(self.spec, self._python)
            self._proc, moving = await spawn_bwrap(
                self._ids,
                self._cgroups,
                str(shared.bwrap),
                ["--args", str(args_fd), *command],
                fds,
                before_exec=write_args,
            )
        finally:
            for fd in fds:
                os.close(fd)
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr(proc.stderr))
        stdin = proc.stdin

        async def send(data: bytes) -> None:
            stdin.write(data)
            await stdin.drain()

        self._channel = Channel(send, proc.stdout, name=f"local:{self.episode_id}")
        try:
            await self._channel.start(timeout=30.0)
        except SandboxError:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 2.0)
            await asyncio.sleep(0.05)
            raise start_error(bytes(self._stderr)) from None
        self._read_info()
        if moving is not None:  # every process of the sandbox in its cgroups, before the
            await moving  # first command (the supervisor forks nothing until asked)
            if self._child_pid is None:
                raise SandboxStartError("the local sandbox did not start: bwrap gave no pid")
            pids = [proc.pid, self._child_pid, *descendants(self._child_pid)]
            await asyncio.to_thread(join_cgroups, pids, self._cgroups)

    async def _child(self, timeout: float = 30.0) -> int | None:
        """The sandbox's pid 1 as the host sees it, once bwrap wrote it (None: it died)."""
        deadline = time.monotonic() + timeout
        while self._child_pid is None and time.monotonic() < deadline:
            self._read_info()
            if self._child_pid is not None:
                break
            if self._stopped or (self._proc is not None and self._proc.returncode is not None):
                return None
            await asyncio.sleep(0.001)
        return self._child_pid

    async def _start_sentinel(self) -> None:
        """Start the network sentinel (:func:`~hazmat.sandbox.netwatch.spawn_sentinel`),
        have it join the sandbox's network namespace once bwrap made it, and set it up.
        If it cannot, the sandbox still has no network; the reason is logged and shown in
        ``info()["sentinel"]``."""
        try:
            # which sandbox it watches, for ps: the prefix of the backing folder to come
            tag = str(sandbox_parent() / f"{DIR_PREFIX}{os.getpid()}-{self.episode_id}")
            sentinel, proc = await spawn_sentinel(name=self.episode_id, tag=tag)
        except OSError as exc:
            self._sentinel_problem = f"cannot start the sentinel: {exc}"
            self._log.warning("sentinel_unavailable", why=self._sentinel_problem)
            return
        self._sentinel_proc = proc
        try:
            await sentinel.ready()
            pid = await self._child()
            if pid is None:
                raise SandboxError("no sandbox pid")
            await sentinel.join(pid, userns=not self._ids.separate)
            await sentinel.start(mode="netns")
            sentinel.setup.update(mode="host", pid=proc.pid)
        except (SandboxError, OSError) as exc:
            await sentinel.close()
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(Exception):
                    err = await asyncio.wait_for(proc.stderr.read(2000), 1.0)
            self._sentinel_problem = f"{exc} {err.decode(errors='replace').strip()}".strip()
            self._log.warning("sentinel_unavailable", why=self._sentinel_problem)
            return
        self.sentinel = sentinel

    async def _drain_stderr(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(Exception):
            while chunk := await reader.read(65536):
                if len(self._stderr) < 65536:
                    self._stderr += chunk[: 65536 - len(self._stderr)]
                self._log.debug("sandbox_stderr", text=chunk[:500].decode(errors="replace"))

    def _read_info(self) -> None:
        if self._info_r is None or self._child_pid is not None:
            return
        with contextlib.suppress(OSError):
            self._info_buf += os.read(self._info_r, 65536)
        with contextlib.suppress(ValueError, KeyError, TypeError):
            info = json.loads(self._info_buf)
            self._child_pid = int(info["child-pid"])
            self._pidns = f"pid:[{int(info['pid-namespace'])}]"

    def _ours(self, pid: int) -> bool:
        """True while ``pid`` is still the sandbox's pid 1 (not a recycled pid)."""
        try:
            return os.readlink(f"/proc/{pid}/ns/pid") == self._pidns
        except OSError:
            return False

    async def stop(self) -> None:
        """Kill the sandbox's processes, close the channel, remove the backing dirs.

        Idempotent; never raises for things already gone. A cancellation while
        stopping finishes the cleanup first, then propagates.
        """
        if self._stopped:
            return
        self._stopped = True
        cancelled: asyncio.CancelledError | None = None
        self._stopped_at = time.clock_gettime(time.CLOCK_BOOTTIME)
        try:
            if self._frozen and self._freezer is not None:  # none of them runs again
                self._freezer.kill(spare=self._proc.pid if self._proc else None)
            if self.sentinel is not None:
                await self.sentinel.close()
            await kill_sandbox(self._proc, self._sentinel_proc, self._child_now, self._ours)
        except asyncio.CancelledError as exc:
            cancelled = exc
            kill_now(self._proc, self._sentinel_proc, self._child_pid, self._ours)
        finally:
            if self._channel is not None:
                self._channel.abort("the sandbox was stopped")
            if self._stderr_task is not None:
                self._stderr_task.cancel()
            if self._info_r is not None:
                with contextlib.suppress(OSError):
                    os.close(self._info_r)
                self._info_r = None
            if self._cgroups:
                remove_cgroups(self._cgroups)
            if self._backing_job is not None:  # done, or a few ms from it
                with contextlib.suppress(BaseException):
                    self._backing_job.result()
            if self._backing is not None:
                self._backing.remove()
                self._backing = self._dir = None
            self._use.release()  # its processes are gone: the tree may be pruned
            self._log.debug("sandbox_stopped", backend="local")
        if cancelled is not None:
            raise cancelled

    def _child_now(self) -> int | None:
        self._read_info()
        return self._child_pid

    # commands ------------------------------------------------------------

    async def _route(self, user: str | None, service: str | None) -> Route:
        """The one channel; agent requests drop to the agent's uid (``"root"`` is the
        namespace's root).

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: ``service`` was given (no services here), or an unknown user.
        """
        if self._stopped or self._channel is None or self._channel.closed:
            raise SandboxClosedError("the local sandbox is not running")
        if service is not None:
            raise SandboxError(
                f"the local sandbox has no service {service!r}", hint="use --sandbox docker"
            )
        uid, gid = self._ids.request_ids(user)
        return Route(self._channel, uid, gid)

    def _command_env(self, user: str | None, env: dict[str, str] | None) -> dict[str, str]:
        """HOME, USER and LOGNAME of ``user`` when it is not ``spec.user``, then ``env``."""
        name = user or self.spec.user
        out = (
            {"HOME": home_of(name), "USER": name, "LOGNAME": name} if name != self.spec.user else {}
        )
        return {**out, **(env or {})}

    # investigators -------------------------------------------------------

    async def snapshot(self, dest: Path) -> SnapshotInfo:
        """Save what changed in the writable dirs since start (``changes.json``, ``changes.tar``;
        see :func:`~hazmat.sandbox.local.snapshot.save_snapshot`).

        Raises:
            SandboxClosedError: the sandbox was stopped (its dirs are gone).
        """
        if self._backing is None:
            raise SandboxClosedError("the local sandbox is not running")
        # Pause the sandbox while reading it, so nothing changes between the listing and
        # the reads (the reads never follow a symlink, frozen or not: see .beneath).
        thaw = not self._frozen
        await self.freeze()
        base = self._ids.host_id(0) if self._ids.separate else 0
        try:
            return await asyncio.to_thread(
                _save_snapshot,
                Path(dest),
                self._backing.root_fd,
                self._backing.dirs(),
                self._baseline,
                names=self._ids.names(),
                id_base=base,
            )
        finally:
            if thaw:
                self._thaw()

    async def freeze(self) -> None:
        """Freeze every process of the sandbox, supervisor included, at once: the cgroup
        freezer (:mod:`.freezer`), done when the kernel says all are frozen; SIGSTOP
        of each process only where no cgroup can be made (not root).

        After this only :meth:`snapshot` and :meth:`stop` make sense (commands would
        wait until their timeout); ``stop()`` still kills everything.

        Raises:
            OSError: the freezer cgroup cannot be written.
        """
        if self._child_pid is None or self._stopped or not self._ours(self._child_pid):
            return
        self._frozen = True
        if self._freezer is None and self._cgroup_name and not self._freezer_problem:
            self._freezer, self._freezer_problem = make_freezer(self._cgroup_name, self._cgroups)
            if self._freezer is not None and self._freezer.folder not in self._cgroups:
                self._cgroups.append(self._freezer.folder)
                self._made.append(self._freezer.folder)
        if self._freezer is not None:
            await self._freezer.freeze(self._pids)
        else:
            self._log.warning("local_freeze_by_signals", why=self._freezer_problem)
            await stop_each(self._child_pid, self._frozen_pids)

    async def processes(self) -> list[dict[str, Any]] | None:
        """The sandbox's processes read from the host's ``/proc`` (pids as the host sees
        them, users by host uid, inside names where the uid is the sandbox's)."""
        if self._child_pid is None or self._stopped or not self._ours(self._child_pid):
            return None
        return await asyncio.to_thread(processes, self._child_pid, self._ids.names())

    def _pids(self) -> list[int]:
        """Every process of the sandbox (the outer bwrap and all below it)."""
        top = self._proc.pid if self._proc is not None else self._child_pid
        return [] if top is None else [top, *descendants(top)]

    def _thaw(self) -> None:
        if self._freezer is not None:
            self._freezer.thaw()
        continue_each(self._frozen_pids)
        self._frozen = False

    async def leftovers(self) -> list[str]:
        """Processes of the sandbox's pid namespace (started before it stopped: a dead
        namespace's number can be reused), a running sentinel, folders and cgroups."""
        out = []
        if self._pidns:
            out += [f"process {pid}" for pid in pids_in_namespace(self._pidns, self._stopped_at)]
        if self._sentinel_proc is not None and self._sentinel_proc.returncode is None:
            out.append(f"sentinel process {self._sentinel_proc.pid}")
        return out + [f"folder {p}" for p in self._made if p.exists()]

    def info(self) -> dict[str, Any]:
        """Backend facts: bwrap version and path, sandbox python, uid separation, pid."""
        return {
            "backend": self.backend,
            "image": self.spec.image if self._root.tree is not None else "host",
            "env": self._root.env,
            "bwrap": str(bwrap_binary()),
            "bwrap_version": bwrap_version(),
            "python": self._python,
            "cgroups": [str(d) for d in self._cgroups],
            "uid_separation": self._ids.separate,
            "id_base": self._ids.base if self._ids.separate else None,
            "pid": self._child_pid,
            "freezer": f"cgroup {self._freezer.kind}"
            if self._freezer
            else (f"signals: {self._freezer_problem}" if self._freezer_problem else "cgroup"),
            "disk": {"bytes": self._backing.disk.size, "device": self._backing.disk.device}
            if self._backing is not None and self._backing.disk is not None
            else (self._backing.disk_problem if self._backing else None),
            "sentinel": self.sentinel.setup
            if self.sentinel
            else f"unavailable: {self._sentinel_problem or 'not started'}",
        }

    @classmethod
    def cleanup(cls, run_id: str | None = None) -> dict[str, int]:
        """Remove the backing folders and cgroups that dead processes left: of ``run_id``
        (:func:`.leftovers.cleanup_run`), else of any run."""
        return {"local_leftovers": len(cleanup_run(run_id) if run_id else cleanup_leftovers())}
