"""Starting bubblewrap for one local sandbox.

With a full id map (root of the host, see :mod:`.ids`), bwrap must run as root of a
user namespace made beforehand, whose ids 0..65535 map to the sandbox's host range,
inside the sandbox's cgroups, with nested user namespaces forbidden. Two ways, the
same steps:

- util-linux (``unshare`` and ``setpriv``, on every Linux that has bubblewrap): a
  chain of small programs, a few milliseconds. ``unshare --user`` makes the namespace
  and hands over to ``sh``, which says it is ready (an empty line on stdout) and waits
  (a line on stdin); this process (root of the host) sets its ``oom_score_adj`` (its
  children inherit it), writes the namespace's uid and gid maps, starts moving it into
  the cgroups (see :func:`spawn_bwrap`) and lets it go on: ``sh`` (which keeps the
  namespace's capabilities, ``--keep-caps``) sets ``max_user_namespaces`` to 0,
  ``setpriv`` becomes the namespace's root and execs bwrap, whose supervisor then owns
  stdin and stdout.
- otherwise :mod:`.launcher` (python): the same steps in one process, after a python
  start (about 20 ms more).

Without a full map, bwrap makes its own user namespace (one id).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from hazmat.errors import SandboxStartError
from hazmat.sandbox.channel import STREAM_LIMIT
from hazmat.sandbox.local.host import start_error
from hazmat.sandbox.local.ids import ID_RANGE, IdMap

__all__ = ["LAUNCHER", "spawn_bwrap"]

LAUNCHER = Path(__file__).with_name("launcher.py")
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

_WAIT = (
    'echo; read -r _ || exit 70; echo 0 > /proc/sys/user/max_user_namespaces || exit 70; exec "$@"'
)


def _tools() -> tuple[str, str, str] | None:
    found = [shutil.which(t, path="/usr/bin:/bin") for t in ("unshare", "setpriv", "sh")]
    return None if None in found else (found[0], found[1], found[2])  # type: ignore[return-value]


async def spawn_bwrap(
    ids: IdMap,
    cgroups: list[Path],
    bwrap: str,
    bwrap_argv: list[str],
    fds: list[int],
    before_exec: Callable[[], Awaitable[None]],
) -> tuple[asyncio.subprocess.Process, asyncio.Future[None] | None]:
    """Start ``bwrap bwrap_argv`` (with ``fds`` passed on) as described in the module
    docstring; stdin, stdout and stderr are pipes (the supervisor's channel).
    ``before_exec`` runs before bwrap starts (it finishes what bwrap reads, e.g. its
    arguments in a memfd of ``fds``).

    Returns the process and, with util-linux, the move into the cgroups still under way
    (a cgroup move waits for an RCU grace period, ~10 ms, while bwrap and the
    supervisor start): the caller awaits it, then :func:`join_cgroups` every process
    of the sandbox before its first command (a process forked before the move ended
    may have stayed behind).

    Raises:
        OSError: a program cannot be started.
        BackendUnavailableError: no user namespace may be made here.
        SandboxStartError: the namespace could not be set up (the message says why).
    """
    tools = _tools() if ids.separate else None
    if tools is None:
        await before_exec()
        if not ids.separate:
            return await _exec(["bwrap", *bwrap_argv], fds, executable=bwrap), None
        procs = ":".join(str(d / "cgroup.procs") for d in cgroups)
        argv = [sys.executable, "-I", "-S", str(LAUNCHER), str(ids.base), str(ID_RANGE)]
        return await _exec([*argv, procs, bwrap, *bwrap_argv], fds), None
    unshare, setpriv, sh = tools
    argv = [unshare, "--user", "--keep-caps", "--", sh, "-c", _WAIT, "sh"]
    argv += [setpriv, "--reuid=0", "--regid=0", "--clear-groups", "--", bwrap, *bwrap_argv]
    proc = await _exec(argv, fds)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    moving: asyncio.Future[None] | None = None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 30.0)
        if ready != b"\n":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 2.0)
            raise start_error(await proc.stderr.read(65536))
        moving = asyncio.ensure_future(asyncio.to_thread(join_cgroups, [proc.pid], cgroups))
        with contextlib.suppress(OSError):  # best effort: host memory pressure kills it first
            Path(f"/proc/{proc.pid}/oom_score_adj").write_text("500\n")
        await before_exec()
        _map_ids(proc.pid, ids)
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    except BaseException:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        if moving is not None:
            with contextlib.suppress(BaseException):
                await moving
        raise
    return proc, moving


async def _exec(
    argv: list[str], fds: list[int], executable: str | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        executable=executable,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        limit=STREAM_LIMIT,
        start_new_session=True,
        pass_fds=tuple(fds),
        env=ENV,
    )


def _map_ids(pid: int, ids: IdMap) -> None:
    """As root of the host: the uid and gid maps of ``pid``'s new user namespace."""
    try:
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {ids.base} {ID_RANGE}\n")
    except OSError as exc:
        raise SandboxStartError(f"the local sandbox did not start: cannot map ids: {exc}") from None


def join_cgroups(pids: list[int], cgroups: list[Path]) -> None:
    """As root of the host: move each of ``pids`` that is not yet in ``cgroups`` there
    (a look at ``cgroup.procs`` is fast, a move waits for an RCU grace period).

    Raises:
        SandboxStartError: a live process could not be moved.
    """
    for folder in cgroups:
        try:
            inside = set((folder / "cgroup.procs").read_text().split())
        except OSError:
            inside = set()
        for pid in pids:
            if str(pid) in inside:
                continue
            try:
                (folder / "cgroup.procs").write_text(f"{pid}\n")
            except ProcessLookupError:
                continue  # gone
            except OSError as exc:
                raise SandboxStartError(
                    f"the local sandbox did not start: cannot join {folder}: {exc}"
                ) from None
