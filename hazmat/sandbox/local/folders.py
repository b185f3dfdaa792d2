"""The host folder behind one local sandbox, and the leftovers of dead host processes.

``<sandbox_parent>/hazmat-local-<host pid>-<episode>-<random>/`` (as root of the host,
the mount point, while the sandbox starts, of the sandbox's own filesystem, which
bounds the disk all of it may use: :mod:`.disk`; afterwards it is reached through
:attr:`Backing.root_fd` only)::

    tmp/ root/ home/ [work/]   the writable dirs (/tmp, /root, $HOME, the workdir)
    etc/                       the synthesized /etc files
    extra/                     files of ``spec.files`` outside the writable dirs (read-only)
    state/                     the shell state of each user (/.hazmat/state)

Files of ``spec.files`` under a writable dir are written into its backing dir; files
elsewhere (``/opt/app/config``) get a read-only bind of their own. Owners are the
sandbox's own host ids (see :mod:`.ids`), so a file of ``root`` stays closed to the agent.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import structlog

from hazmat.errors import SandboxStartError
from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.local.cgroups import CGROUP_PREFIX, cgroup_mounts, remove_cgroups
from hazmat.sandbox.local.disk import (
    UNBOUNDED_ENV,
    Disk,
    disk_bytes,
    loop_support,
    mount_state,
    mounts_under,
    unmount,
)
from hazmat.sandbox.local.host import DIR_PREFIX, rmtree, sandbox_parent
from hazmat.sandbox.local.ids import AGENT_UID, IdMap
from hazmat.sandbox.local.plan import STATE_DIR, etc_files, home_of, under

__all__ = ["Backing", "cleanup_leftovers"]

log = structlog.get_logger("hazmat.sandbox.local")


class Backing:
    """The backing folder of one sandbox (see the module docstring)."""

    def __init__(self, root: Path, ids: IdMap) -> None:
        self.root = root
        self.ids = ids
        self.mounts: dict[str, Path] = {}
        """Sandbox path of each writable dir -> its host folder."""
        self.disk: Disk | None = None
        """The filesystem mounted on :attr:`root` (None: a plain folder)."""
        self.root_fd = -1
        """A descriptor of the backing folder (of its filesystem's root, which stays
        reachable through it once the host's mount is gone): snapshots read beneath it."""
        self.disk_problem = "not root of the host: bounded per file only"
        """Why there is no :attr:`disk` ("" when there is one)."""

    @classmethod
    def make(cls, spec: SandboxSpec, ids: IdMap, episode_id: str) -> Backing:
        """Make the folder (on a filesystem of its own as root, see :mod:`.disk`), its
        writable dirs, ``/etc``, and place ``spec.files``.

        Raises:
            OSError: the folder cannot be made or filled (what was made is removed).
            SandboxStartError: run as root on a host with loop devices, the disk image
                cannot be attached (and ``HAZMAT_LOCAL_DISK`` is not ``unbounded``).
        """
        episode = "".join(c if c.isalnum() or c in "-_" else "_" for c in episode_id[:24])
        root = Path(
            tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-{episode}-", dir=sandbox_parent())
        )
        backing = cls(root, ids)
        try:
            if ids.separate:
                try:
                    backing.disk = Disk.attach(root, disk_bytes(spec))
                    backing.disk_problem = ""
                except OSError as exc:
                    backing.disk_problem = f"no filesystem image ({exc}): bounded per file only"
                    if loop_support() and os.environ.get(UNBOUNDED_ENV) != "unbounded":
                        raise SandboxStartError(
                            f"the sandbox's disk bound cannot be set up: {exc}; set"
                            f" {UNBOUNDED_ENV}=unbounded to run it bounded per file only"
                        ) from exc
                    log.warning("local_disk_unbounded", why=backing.disk_problem)
            backing._populate(spec)
            backing.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except BaseException:
            backing.remove()
            raise
        return backing

    def _mkdir(self, name: str, mode: int, owner: int) -> Path:
        path = self.root / name
        path.mkdir(mode=mode)
        os.chmod(path, mode)
        if self.ids.separate:
            os.chown(path, owner, owner)
        return path

    def _populate(self, spec: SandboxSpec) -> None:
        ids, root = self.ids, self.root
        # Only the sandbox's own ids need to enter it (bwrap resolves binds as them).
        os.chmod(root, 0o700)
        if ids.separate:
            os.chown(root, ids.base, ids.base)
        agent, rootid = ids.host_id(AGENT_UID), ids.host_id(0)
        self.mounts = {
            "/tmp": self._mkdir("tmp", 0o1777, rootid),
            "/root": self._mkdir("root", 0o700, rootid),
        }
        home = home_of(spec.user)
        home_owner = rootid if spec.user == "root" else agent
        if home not in self.mounts:
            self.mounts[home] = self._mkdir("home", 0o750, home_owner)
        workdir = os.path.normpath(spec.workdir)
        if not any(under(workdir, m) for m in self.mounts):
            self.mounts[workdir] = self._mkdir("work", 0o755, home_owner)
        else:
            self.path_for(workdir + "/.x")
        state = self._mkdir("state", 0o711, rootid)
        if self.disk is not None:  # off the agent's disk: a full disk keeps the shell
            mount_state(state, rootid)
        if ids.separate:
            (state / f"u{AGENT_UID}").mkdir(mode=0o700)
            os.chown(state / f"u{AGENT_UID}", agent, agent)
        etc = self._mkdir("etc", 0o755, rootid)
        for name, text in etc_files().items():
            (etc / name).write_text(text)
            os.chmod(etc / name, 0o644)
        self._mkdir("extra", 0o755, rootid)
        for path, fspec in spec.files.items():
            owner = ids.host_id(ids.uid_of(fspec.owner))
            target = self.path_for(os.path.normpath(path))
            target.write_bytes(fspec.data())
            os.chmod(target, fspec.mode)
            if ids.separate:
                os.chown(target, owner, owner)

    def path_for(self, path: str) -> Path:
        """Host path that backs sandbox ``path``, its missing parents made.

        New parents belong to whoever owns the writable dir they are in (the agent in
        its home, root in /root and /tmp), as if that user had made them.
        """
        for mount, backing in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if under(path, mount):
                rel = os.path.relpath(path, mount)
                base = backing
                break
        else:
            rel = path.lstrip("/")
            base = self.root / "extra"
        current = base
        owner = base.stat().st_uid
        for part in Path(rel).parts[:-1]:
            current = current / part
            if not current.exists():
                current.mkdir(mode=0o755)
                if self.ids.separate:
                    os.chown(current, owner, owner)
        return base / rel

    def etc(self) -> tuple[tuple[str, str], ...]:
        """``(host file, name)`` of the synthesized ``/etc`` files."""
        return tuple((str(self.root / "etc" / n), n) for n in sorted(os.listdir(self.root / "etc")))

    def binds(self, guest: Path, guest_in: str) -> tuple[tuple[str, str, str], ...]:
        """The writable dirs, the placed read-only files, the guest programs (``guest``
        at ``guest_in``) and the shell state, as ``(op, host, sandbox path)``."""
        out = [("--bind", str(b), d) for d, b in sorted(self.mounts.items())]
        extra = self.root / "extra"
        for dirpath, _dirs, files in os.walk(extra):
            for name in files:
                host = Path(dirpath) / name
                out.append(("--ro-bind", str(host), "/" + str(host.relative_to(extra))))
        out += [
            ("--ro-bind", str(guest), guest_in),
            ("--bind", str(self.root / "state"), STATE_DIR),
        ]
        return tuple(out)

    def dirs(self) -> dict[str, str]:
        """Sandbox path of each writable dir -> its path beneath :attr:`root_fd`."""
        return {dest: os.path.relpath(host, self.root) for dest, host in self.mounts.items()}

    def release_host(self) -> None:
        """Once bwrap has bound the dirs: detach the host's mount of the filesystem
        (see :mod:`.disk`); :attr:`root_fd` still reaches it."""
        if self.disk is not None:
            self.disk.release_host()

    def remove(self) -> None:
        """Let the filesystem go (unmounted, image closed, descriptor closed), then
        remove the folder, never following the agent's symlinks."""
        if self.disk is not None:
            self.disk.detach()
        if self.root_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.root_fd)
            self.root_fd = -1
        for point in mounts_under(self.root):
            unmount(point)
        rmtree(self.root)


def cleanup_leftovers() -> list[str]:
    """Remove backing folders (their filesystems unmounted first), filesystem images
    and cgroups of local sandboxes whose host process died.

    A sandbox's processes die with the process that made it (``--die-with-parent``),
    but a host process killed with SIGKILL cannot remove its folders, mounts, images
    and cgroups. All are named ``hazmat-local-<pid>-...`` (folders, ``.img`` files, in
    the temp folder) or ``hazmat-<pid>-...`` (cgroups, next to the creator's cgroup on
    each hierarchy). Only leftovers whose creating pid is gone are touched. Returns
    what was removed.
    """
    removed: list[str] = []
    parents = dict.fromkeys((Path(tempfile.gettempdir()), sandbox_parent()))
    candidates = [p for parent in parents for p in parent.glob(f"{DIR_PREFIX}*")]
    for mount in cgroup_mounts().values():
        for depth in range(3):  # cgroups are made next to the creator's own cgroup
            candidates += mount.glob("*/" * depth + f"{CGROUP_PREFIX}*")
    for path in dict.fromkeys(candidates):
        prefix = DIR_PREFIX if path.name.startswith(DIR_PREFIX) else CGROUP_PREFIX
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            if prefix == DIR_PREFIX and path.is_file():
                path.unlink()
            elif prefix == DIR_PREFIX:
                for point in mounts_under(path):
                    unmount(point)
                rmtree(path)
            else:
                remove_cgroups([path])
            if not path.exists():
                removed.append(str(path))
    return removed
