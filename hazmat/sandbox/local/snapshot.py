"""What a local sandbox changed and which processes it runs, read from the host.

The writable dirs are host folders (see :mod:`.folders`): a snapshot compares their
listing with the one taken at start and archives what was added or changed
(:mod:`.archive`). Both read every file beneath a descriptor of its writable dir
(:mod:`.beneath`: ``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``), never
by a path from ``/``, so a folder the agent swaps for a symlink to a host folder is
never entered, and the agent's ``ln -s /etc/shadow`` is archived as a link.
Processes are read from the host's ``/proc``, so a frozen sandbox can be listed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from hazmat.sandbox.base import SnapshotInfo
from hazmat.sandbox.local.archive import SNAPSHOT_CAP, Archiver
from hazmat.sandbox.local.beneath import open_beneath, walk
from hazmat.sandbox.local.plan import under

__all__ = [
    "SNAPSHOT_CAP",
    "Listing",
    "alive",
    "descendants",
    "listing",
    "pids_in_namespace",
    "processes",
    "save_snapshot",
]

Listing = dict[str, tuple[int, int, int]]
"""Sandbox path -> (mtime_ns, size, mode)."""


def _open_dirs(root: int, dirs: dict[str, str]) -> dict[str, int]:
    """A descriptor of each writable dir (sandbox path -> path beneath ``root``)."""
    out: dict[str, int] = {}
    for dest, rel in dirs.items():
        with contextlib.suppress(OSError):
            out[dest] = open_beneath(root, rel, os.O_RDONLY | os.O_DIRECTORY)
    return out


def listing(root: int, dirs: dict[str, str]) -> Listing:
    """Everything under the writable dirs (``dirs``: sandbox path -> its path beneath
    the backing folder's descriptor ``root``), read beneath each dir's descriptor."""
    out: Listing = {}
    fds = _open_dirs(root, dirs)
    try:
        for dest, fd in fds.items():
            for rel, st in walk(fd):
                out[os.path.join(dest, rel)] = (st.st_mtime_ns, st.st_size, st.st_mode)
    finally:
        for fd in fds.values():
            os.close(fd)
    return out


def _mount_of(mounts: dict[str, int], path: str) -> tuple[str, str]:
    """(sandbox path of the writable dir holding ``path``, ``path`` relative to it)."""
    for dest in sorted(mounts, key=lambda d: -len(d)):
        if under(path, dest):
            return dest, os.path.relpath(path, dest)
    raise KeyError(path)


def save_snapshot(
    dest: Path,
    root: int,
    dirs: dict[str, str],
    baseline: Listing,
    *,
    cap: int = SNAPSHOT_CAP,
    names: dict[int, str] | None = None,
    id_base: int = 0,
) -> SnapshotInfo:
    """Write ``changes.tar`` (what was added or changed since ``baseline``, at most
    ``cap`` bytes, sparse files sparse; see :mod:`.archive`) and ``changes.json``
    (``added``, ``changed``, ``deleted``; ``sparse``: the paths stored sparsely;
    ``left_out``: ``{"path", "size", "why"}`` of each file not archived, and
    ``truncated`` when the cap cut the archive) into ``dest``. ``names`` (host uid ->
    user name) and ``id_base`` (the sandbox root's host id) name the owners. The
    caller keeps the sandbox frozen meanwhile; ``root`` and ``dirs`` are as for
    :func:`listing`.

    Raises:
        OSError: ``dest`` cannot be written.
    """
    now = listing(root, dirs)
    added = sorted(p for p in now if p not in baseline)
    changed = sorted(p for p in now if p in baseline and now[p] != baseline[p])
    deleted = sorted(p for p in baseline if p not in now)
    dest.mkdir(parents=True, exist_ok=True)
    roots = _open_dirs(root, dirs)
    try:
        with tarfile.open(dest / "changes.tar", "w", format=tarfile.PAX_FORMAT) as tar:
            archive = Archiver(tar, cap=cap, names=names or {}, id_base=id_base)
            for path in sorted(added + changed):
                with contextlib.suppress(KeyError):  # its dir could not be opened
                    mount, rel = _mount_of(roots, path)
                    archive.add(roots[mount], rel, path)
    finally:
        for fd in roots.values():
            os.close(fd)
    cut = [e for e in archive.left_out if str(e["why"]).startswith("over the snapshot cap")]
    (dest / "changes.json").write_text(
        json.dumps(
            {
                "backend": "local",
                "added": added,
                "changed": changed,
                "deleted": deleted,
                "sparse": archive.sparse,
                "left_out": archive.left_out,
                "truncated": bool(cut),
                "cap": cap,
            },
            indent=1,
        )
    )
    return SnapshotInfo(path=dest, changed=[*added, *changed, *("-" + p for p in deleted)])


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def pids_in_namespace(ns: str, started_before: float | None = None) -> list[int]:
    """Host pids in pid namespace ``ns`` (``pid:[inode]``), only those started before
    ``started_before`` (seconds since boot) when given: a dead namespace's inode number
    can be reused by a new one."""
    out = []
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") != ns:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                start = int(f.read().rsplit(b")", 1)[1].split()[19]) / tick
        except (OSError, IndexError, ValueError):
            continue
        if started_before is None or not started_before or start <= started_before:
            out.append(int(name))
    return out


def descendants(root: int) -> list[int]:
    """Every live pid below ``root`` in the host's process tree (from the kernel's
    ``/proc/PID/task/TID/children`` lists where it has them, else a scan of ``/proc``)."""
    if not os.path.exists(f"/proc/{root}/task/{root}/children"):
        return _descendants_by_scan(root)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    children = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            out += children
            todo += children
    return out


def _descendants_by_scan(root: int) -> list[int]:
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


def processes(root: int, names: dict[int, str]) -> list[dict[str, Any]]:
    """``root`` and its descendants as ``{"pid", "ppid", "user", "state", "cmdline"}``
    (pids as the host sees them; ``names``: host uid -> user name)."""
    out = []
    for pid in [root, *descendants(root)]:
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
