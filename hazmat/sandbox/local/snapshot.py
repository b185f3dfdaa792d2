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
import functools
import json
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hazmat.sandbox.base import SnapshotInfo
from hazmat.sandbox.local.archive import LEFT_OUT_BYTES, SNAPSHOT_CAP, Archiver, readable
from hazmat.sandbox.local.beneath import open_beneath, walk
from hazmat.sandbox.local.plan import under

__all__ = [
    "DEADLINE",
    "MAX_ENTRIES",
    "SNAPSHOT_CAP",
    "Listing",
    "alive",
    "descendants",
    "listing",
    "pids_in_namespace",
    "processes",
    "readable",
    "save_snapshot",
]

Listing = dict[str, tuple[int, int, int]]
"""Sandbox path -> (mtime_ns, size, mode)."""


MAX_ENTRIES = 100_000
"""Most paths a snapshot lists as added or changed (the rest are counted)."""
MAX_NAME_BYTES = 32 << 20
"""Most bytes of path names a snapshot lists (a deep tree's paths are long)."""
DEADLINE = 30.0
"""Seconds a snapshot may take; past them it is cut, with a note."""


def _open_dirs(root: int, dirs: dict[str, str]) -> dict[str, int]:
    """A descriptor of each writable dir (sandbox path -> path beneath ``root``)."""
    out: dict[str, int] = {}
    for dest, rel in dirs.items():
        with contextlib.suppress(OSError):
            out[dest] = open_beneath(root, rel, os.O_RDONLY | os.O_DIRECTORY)
    return out


def _entries(
    root: int, dirs: dict[str, str], skip: Callable[[str, str], None] | None = None
) -> Iterator[tuple[str, tuple[int, int, int]]]:
    """``(sandbox path, (mtime_ns, size, mode))`` of everything under the writable dirs,
    read beneath each dir's descriptor (:func:`~.beneath.walk`); folders that cannot
    be entered go to ``skip`` (sandbox path, why)."""
    fds = _open_dirs(root, dirs)
    try:
        for dest, fd in fds.items():
            where = None if skip is None else functools.partial(_skip_in, skip, dest)
            for rel, st in walk(fd, skip=where):
                yield os.path.join(dest, rel), (st.st_mtime_ns, st.st_size, st.st_mode)
    finally:
        for fd in fds.values():
            os.close(fd)


def _skip_in(skip: Callable[[str, str], None], dest: str, rel: str, why: str) -> None:
    skip(os.path.normpath(os.path.join(dest, rel)), why)


def listing(root: int, dirs: dict[str, str], *, limit: int = MAX_ENTRIES) -> Listing:
    """Everything under the writable dirs (``dirs``: sandbox path -> its path beneath
    the backing folder's descriptor ``root``), read beneath each dir's descriptor;
    at most ``limit`` paths (the baseline a snapshot compares with)."""
    out: Listing = {}
    for path, key in _entries(root, dirs):
        if len(out) >= limit:
            break
        out[path] = key
    return out


def _mount_of(mounts: dict[str, int], path: str) -> tuple[str, str]:
    """(sandbox path of the writable dir holding ``path``, ``path`` relative to it)."""
    for dest in sorted(mounts, key=lambda d: -len(d)):
        if under(path, dest):
            return dest, path[len(dest) :].lstrip("/") or "."
    raise KeyError(path)


@dataclass
class _Changes:
    """What a snapshot's walk found, bounded (see :func:`save_snapshot`)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    not_listed: int = 0
    name_bytes: int = 0
    cut: str = ""
    skipped: list[dict[str, object]] = field(default_factory=list)


def _compare(
    root: int, dirs: dict[str, str], baseline: Listing, deadline: float, limit: int
) -> _Changes:
    """Walk the writable dirs once, comparing with ``baseline``: at most ``limit``
    added or changed paths (and :data:`MAX_NAME_BYTES` of names) are listed, the
    rest counted (folders are given up before files: a file's path names its
    folders, so a file hidden at the bottom of a deep tree stays listed); past
    ``deadline`` (monotonic) the walk stops with a note."""
    out = _Changes()
    seen: set[str] = set()

    def skip(path: str, why: str) -> None:
        if len(out.skipped) < limit:
            out.skipped.append({"path": readable(path), "size": 0, "why": why})

    folders: list[tuple[str, bool]] = []  # listed folders (path, added): given up first
    files: list[tuple[str, bool]] = []
    for n, (path, key) in enumerate(_entries(root, dirs, skip)):
        if n % 512 == 0 and time.monotonic() > deadline:
            out.cut = f"the walk passed the snapshot's deadline after {n} entries"
            break
        old = baseline.get(path)
        if old is not None:
            seen.add(path)
            if old == key:
                continue
        (folders if stat.S_ISDIR(key[2]) else files).append((path, old is None))
        out.name_bytes += len(path)
        # over the bounds: a folder goes first (the paths of what is in it name it)
        while len(folders) + len(files) > limit or out.name_bytes > MAX_NAME_BYTES:
            gone, _ = (folders or files).pop()
            out.name_bytes -= len(gone)
            out.not_listed += 1
    for path, added in folders + files:
        (out.added if added else out.changed).append(path)
    if not out.cut:
        out.deleted = sorted(p for p in baseline if p not in seen)
    out.added.sort()
    out.changed.sort()
    return out


def save_snapshot(
    dest: Path,
    root: int,
    dirs: dict[str, str],
    baseline: Listing,
    *,
    cap: int = SNAPSHOT_CAP,
    names: dict[int, str] | None = None,
    id_base: int = 0,
    seconds: float | None = None,
    limit: int | None = None,
) -> SnapshotInfo:
    """Write ``changes.tar`` (what was added or changed since ``baseline``, sparse
    files sparse, hard links as links; see :mod:`.archive`) and ``changes.json``
    (``added``, ``changed``, ``deleted``; ``sparse``: the paths stored sparsely;
    ``left_out``: ``{"path", "size", "why"}`` of each file not archived or folder
    not read, ``truncated`` when the cap cut the archive) into ``dest``; both
    together take at most ``cap`` bytes. At most ``limit`` (:data:`MAX_ENTRIES`)
    added or changed paths are listed (``not_listed``: how many more there were); a
    snapshot still running after ``seconds`` (:data:`DEADLINE`) is cut (``cut``: why; ``deleted`` is then not known). Paths in
    ``changes.json`` and the returned info are valid text (:func:`readable`).
    ``names`` (host uid -> user name) and ``id_base`` (the sandbox root's host id)
    name the owners. The caller keeps the sandbox frozen meanwhile; ``root`` and
    ``dirs`` are as for :func:`listing`.

    Raises:
        OSError: ``dest`` cannot be written.
    """
    seconds = DEADLINE if seconds is None else seconds
    deadline = time.monotonic() + seconds
    found = _compare(root, dirs, baseline, deadline, MAX_ENTRIES if limit is None else limit)
    lists = {
        "added": [readable(p) for p in found.added],
        "changed": [readable(p) for p in found.changed],
        "deleted": [readable(p) for p in found.deleted],
    }
    # changes.json counts against the cap: its lists, and room for the notes
    reserve = len(json.dumps(lists, indent=1).encode()) + LEFT_OUT_BYTES + (64 << 10)
    dest.mkdir(parents=True, exist_ok=True)
    roots = _open_dirs(root, dirs)
    archive = Archiver(None, cap=max(0, cap - reserve), names=names or {}, id_base=id_base)
    archive.left_out.extend(found.skipped)
    unarchived = 0
    try:
        with tarfile.open(dest / "changes.tar", "w", format=tarfile.PAX_FORMAT) as tar:
            archive.tar = tar
            todo = sorted(found.added + found.changed)
            for n, path in enumerate(todo):
                if time.monotonic() > deadline:
                    unarchived = len(todo) - n
                    found.cut = found.cut or (
                        f"archiving passed the snapshot's deadline: {unarchived} not archived"
                    )
                    break
                with contextlib.suppress(KeyError):  # its dir could not be opened
                    mount, rel = _mount_of(roots, path)
                    archive.add(roots[mount], rel, path)
    finally:
        archive.close()
        for fd in roots.values():
            os.close(fd)
    cut = [e for e in archive.left_out if str(e["why"]).startswith("over the snapshot cap")]
    (dest / "changes.json").write_text(
        json.dumps(
            {
                "backend": "local",
                **lists,
                "not_listed": found.not_listed,
                "sparse": [readable(p) for p in archive.sparse],
                "left_out": archive.left_out,
                "left_out_more": archive.left_out_more,
                "truncated": bool(cut) or archive.over_cap,
                "cut": f"{found.cut} (after {seconds:g} s)" if found.cut else "",
                "cap": cap,
            },
            indent=1,
        )
    )
    note = [*lists["added"], *lists["changed"], *("-" + p for p in lists["deleted"])]
    return SnapshotInfo(path=dest, changed=note)


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
