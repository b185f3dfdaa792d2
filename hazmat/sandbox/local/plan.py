"""The bubblewrap command line of a local sandbox, as a pure function of a :class:`Plan`.

Layout inside the sandbox (everything not listed is absent)::

    /usr, /bin, /sbin, /lib*      host system dirs, read-only (or the same symlinks)
    /etc                          synthesized: passwd/group (root, agent 1000, nobody),
                                  hostname, hosts, resolv.conf (the sentinel, 127.0.0.1), nsswitch,
                                  plus read-only binds of harmless host files (ld.so.cache,
                                  alternatives, ssl/certs, localtime, ...). Never the host's
                                  shadow, gshadow, sudoers, ssh keys or machine-id.
    /proc /dev                    fresh procfs (new pid ns), minimal /dev, /dev/shm 64 MiB
    /tmp /root $HOME spec.workdir writable, backed by host folders the sandbox owns
    /var/tmp -> /tmp
    /.hazmat/guest/               the guest programs (supervisor, read-only)
    /.hazmat/state                shell state of each user (root-owned, per-uid subdirs)

Everything else is read-only (the root is a tmpfs remounted read-only). The host
facts the plan needs (which system dirs exist, which are symlinks) are read once by
:func:`host_system_dirs`.

On an environment's root file system (``Plan.root``, see :mod:`.system`) the system
parts come from that tree instead of the host: ``/usr`` (and ``/bin`` ... as its
symlinks) whole, and each entry of its ``/etc``, ``/var``, ``/opt``, ... read-only, one
by one (no host ``/etc`` file at all); the synthesized ``/etc`` files and the spec's
placed files win over the tree's entries of the same path.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from hazmat.errors import SandboxStartError
from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.local.ids import AGENT_UID

__all__ = [
    "GUEST_IN",
    "HOST_ETC",
    "RESERVED",
    "SANDBOX_PATH",
    "STATE_DIR",
    "SYSTEM_DIRS",
    "Plan",
    "bwrap_args",
    "check_spec",
    "etc_files",
    "home_of",
    "host_system_dirs",
    "supervisor_command",
    "under",
]

STATE_DIR = "/.hazmat/state"
GUEST_IN = "/.hazmat/guest"
SUPERVISOR_IN = f"{GUEST_IN}/supervisor.py"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEEP_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETUID",
    "CAP_SETGID",
)
"""What root of the sandbox's user namespace keeps (none counts against host objects)."""

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
HOST_ETC = (
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
RESERVED = (
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


def under(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def home_of(user: str) -> str:
    """HOME of a sandbox user."""
    return "/root" if user == "root" else f"/home/{user}"


def check_spec(spec: SandboxSpec) -> None:
    """Refuse what the local backend cannot honour (it needs Docker).

    Raises:
        SandboxStartError: the spec has services, an allowlist network, extra
            capabilities, loosened hardening, an unknown user, or a path that is a
            read-only host system path.
    """
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
        if any(under(norm, d) for d in (*SYSTEM_DIRS, *RESERVED)) or any(
            under(norm, "/etc/" + e) for e in HOST_ETC
        ):
            raise SandboxStartError(
                f"the local backend cannot place {path}: it is a read-only host system path",
                hint="put it under /root, /tmp, the workdir or a new folder (e.g. /opt), "
                "or use --sandbox docker",
            )


def etc_files() -> dict[str, str]:
    """The synthesized files of ``/etc`` (name -> text)."""
    return {
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


@functools.cache
def host_system_dirs() -> tuple[tuple[str, str | None], ...]:
    """The host's system dirs that exist: ``(path, symlink target or None)``."""
    out: list[tuple[str, str | None]] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            out.append((d, os.readlink(d)))
        elif os.path.isdir(d):
            out.append((d, None))
    return tuple(out)


@dataclass(frozen=True)
class Plan:
    """Everything the bwrap command line of one sandbox depends on."""

    spec: SandboxSpec
    separate: bool
    """A full id map (the launcher made the user namespace) or bwrap's single id."""
    python: str
    """The python3 that runs the supervisor."""
    python_prefix: str | None
    """A folder to bind read-only when that python is outside the system dirs."""
    etc: tuple[tuple[str, str], ...]
    """``(host file, name)`` of the synthesized ``/etc`` files."""
    binds: tuple[tuple[str, str, str], ...]
    """``(--bind | --ro-bind, host path, sandbox path)``: the writable dirs, placed files,
    the guest programs and the shell state."""
    info_fd: int
    system: tuple[tuple[str, str | None], ...] = ()
    """See :func:`host_system_dirs`; with ``root``, the tree's entries
    (:func:`~hazmat.sandbox.local.system.rootfs_entries`)."""
    root: str | None = None
    """The environment's root file system on the host (None: the host's system)."""


def bwrap_args(plan: Plan) -> tuple[list[str], list[str]]:
    """(bwrap options, ``--`` + the supervisor's command line) for ``plan``. Pure."""
    spec = plan.spec
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
        str(plan.info_fd),
    ]
    if plan.separate:
        args += ["--cap-drop", "ALL"]
        for cap in KEEP_CAPS:
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
    made = {"/", "/etc", "/run", "/var", "/proc", "/dev"}
    if plan.root is not None:
        args += _tree_args(plan, made)
    else:
        for d, target in plan.system:
            args += ["--symlink", target, d] if target is not None else ["--ro-bind", d, d]
        if plan.python_prefix is not None:
            args += ["--ro-bind", plan.python_prefix, plan.python_prefix]
        args += ["--dir", "/etc", "--perms", "0755", "--dir", "/etc/ssl"]
        for host, name in plan.etc:
            args += ["--ro-bind", host, f"/etc/{name}"]
        for name in HOST_ETC:
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
    for _op, _src, dest in plan.binds:
        for parent in reversed(PurePosixPath(dest).parents):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for op, src, dest in plan.binds:
        args += [op, src, dest]
    args += ["--remount-ro", "/", "--chdir", os.path.normpath(spec.workdir), "--clearenv"]
    user = spec.user
    env = {
        "PATH": SANDBOX_PATH,
        "HOME": home_of(user),
        "USER": user,
        "LOGNAME": user,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "HAZMAT_STATE_DIR": STATE_DIR,
        **spec.env,
    }
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args, supervisor_command(spec, plan.python)


def _tree_args(plan: Plan, made: set[str]) -> list[str]:
    """The system parts of ``plan.root`` (see the module docstring). A folder entry that
    a placed file (or a writable dir) lies under is not bound whole: its own entries,
    which follow it, are bound one by one instead, minus the one the file lies under
    (that file wins, as a file written over the image does on Docker). The synthesized
    ``/etc`` files are bound last, over the tree's (a whole ``/etc`` has them as files)."""
    assert plan.root is not None
    args = ["--dir", "/etc"]
    dirs = {"/", "/etc"}
    synthesized = {f"/etc/{name}" for _h, name in plan.etc}
    placed = [os.path.normpath(dest) for _op, _src, dest in plan.binds]
    whole: list[str] = []
    for path, target in plan.system:
        if any(under(path, w) for w in whole) or path in synthesized:
            continue
        if any(under(p, path) for p in placed) or any(under(path, r) for r in RESERVED):
            continue
        parent = str(PurePosixPath(path).parent)
        if parent not in dirs:  # before bwrap makes it for the bind (as 0700)
            dirs.add(parent)
            made.add(parent)
            args += ["--perms", "0755", "--dir", parent]
        if target is not None:
            args += ["--symlink", target, path]
        else:
            args += ["--ro-bind", plan.root + path, path]
            whole.append(path)
    for host, name in plan.etc:
        args += ["--ro-bind", host, f"/etc/{name}"]
    return args


def supervisor_command(spec: SandboxSpec, python: str) -> list[str]:
    """``--`` and the supervisor's command line (its rlimits from ``spec.limits``)."""
    limits = spec.limits
    rlimits = {
        "nproc": limits.pids,
        "as": limits.memory_mb << 20,
        "cpu": limits.cpu_seconds,
        "fsize": limits.file_size_mb << 20,
        "core": 0,
        "nofile": 4096,
    }
    return [
        "--",
        python,
        "-u",
        "-I",
        "-S",
        SUPERVISOR_IN,
        *(f"--rlimit={k}={v}" for k, v in rlimits.items()),
    ]
