"""Reading a sandbox's files from the host without ever leaving its folder.

The host reads a local sandbox's writable dirs (for snapshots) with host privileges,
while the agent may be swapping a folder for a symlink to a host path as fast as it
can. Every path is therefore resolved *by the kernel, beneath a folder descriptor*:
``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
RESOLVE_NO_XDEV)`` on the whole relative path (Linux 5.6+), else component by
component from folder descriptors opened with ``O_NOFOLLOW`` (each checked with
``fstat`` to be a folder on the same device). A symlink anywhere on the way fails
the open (``ELOOP``); a symlink as the last component is read as a link (its target
text, :func:`entry`), never followed. Nothing is resolved by path from ``/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Entry", "Folders", "entry", "have_openat2", "open_beneath", "open_root", "walk"]

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV

_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}
"""openat2's number (the generic syscall table: the same on both)."""


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _openat2(dirfd: int, path: str, flags: int) -> int:
    """``openat2(dirfd, path, {flags | O_CLOEXEC, 0, RESOLVE})``.

    Raises:
        OSError: the kernel refused (``ENOSYS`` when it has no openat2).
    """
    number = _SYS_OPENAT2.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, "openat2 is not known on this machine")
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE)
    fd = int(
        _libc().syscall(
            ctypes.c_long(number),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{os.strerror(code)}: {path!r}")
    return fd


@functools.cache
def have_openat2() -> bool:
    """True when this kernel has openat2 and honours the resolve flags used here."""
    root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        os.close(_openat2(root, ".", os.O_PATH))
    except OSError:
        return False
    finally:
        os.close(root)
    return True


def _parts(rel: str) -> list[str]:
    """The components of a path relative to the root; ``..``, ``.`` and an absolute
    path are refused (they cannot name anything *beneath* the root).

    Raises:
        OSError: ``EXDEV`` for any of those.
    """
    if rel.startswith("/"):
        raise OSError(errno.EXDEV, f"not a relative path: {rel!r}")
    parts = [p for p in rel.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise OSError(errno.EXDEV, f"path leaves its root: {rel!r}")
    return parts


def open_beneath(root: int, rel: str, flags: int, *, fallback: bool = False) -> int:
    """Open ``rel`` beneath the folder descriptor ``root``, following no symlink on
    the way nor at the end, crossing no mount, never leaving ``root``.

    ``rel`` "" opens ``root`` itself again. ``fallback`` forces the component walk
    (the tests use it; it is taken anyway when the kernel has no openat2).

    Raises:
        OSError: ``ELOOP`` for a symlink on the way or at the end, ``EXDEV`` for a
            path that would leave ``root`` or cross a mount, ``ENOTDIR``/``ENOENT``
            as the kernel says.
    """
    parts = _parts(rel)
    if not parts:
        fd = os.open(".", flags | os.O_CLOEXEC, dir_fd=root)
    elif not fallback and have_openat2():
        fd = _openat2(root, "/".join(parts), flags)
    else:
        fd = _walk_open(root, parts, flags)
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode) or (flags & os.O_DIRECTORY and not stat.S_ISDIR(mode)):
        os.close(fd)
        raise OSError(errno.ELOOP if stat.S_ISLNK(mode) else errno.ENOTDIR, f"{rel!r}")
    return fd


def _walk_open(root: int, parts: list[str], flags: int) -> int:
    """:func:`open_beneath` without openat2: one ``O_NOFOLLOW`` component at a time."""
    rel = "/".join(parts)
    dev = os.fstat(root).st_dev
    current = root
    try:
        for part in parts[:-1]:
            fd = os.open(
                part,
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=current,
            )
            if current != root:
                os.close(current)
            current = fd
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != dev:
                raise OSError(errno.EXDEV, f"not a folder of the same mount: {rel!r}")
        fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
        if os.fstat(fd).st_dev != dev:
            os.close(fd)
            raise OSError(errno.EXDEV, f"crosses a mount: {rel!r}")
        return fd
    finally:
        if current != root:
            os.close(current)


def open_root(path: str) -> int:
    """A folder descriptor of ``path`` (a host folder of the sandbox's backing tree,
    whose parents the sandbox cannot reach), not following a symlink at its end.

    Raises:
        OSError: it is not a folder (``ENOTDIR``, ``ELOOP`` for a symlink).
    """
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


WINDOW = 128
"""Most folder descriptors :func:`walk` keeps open at once (a deeper folder's parents
are closed and reopened from the root when needed, see :func:`walk`)."""

Skip = Callable[[str, str], None]
"""Told ``(relative path, why)`` of each folder :func:`walk` could not enter."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass
class _Frame:
    """A folder :func:`walk` listed and whose subfolders it has yet to enter."""

    rel: str
    ident: tuple[int, int]
    """Its ``(st_dev, st_ino)``: a reopened folder must be the same one."""
    todo: list[str]
    """Its subfolders' names still to enter (last first)."""
    depth: int
    """How many names ``rel`` has."""
    fd: int | None = None


def _sub(parent: int, name: str, dev: int) -> tuple[int, os.stat_result]:
    """Open folder ``name`` in ``parent``: no symlink, same device.

    Raises:
        OSError: it cannot be opened, or is not a folder of the same mount (``EXDEV``).
    """
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_dev != dev:
        os.close(fd)
        raise OSError(errno.EXDEV, f"not a folder of the same mount: {name!r}")
    return fd, st


def _reopen(root: int, dev: int, stack: list[_Frame], index: int) -> None:
    """Reopen ``stack[index]`` from ``root``, one component at a time (any depth: no
    path is ever longer than one name); on the way, reopen the closed frames of the
    stack up to :data:`WINDOW` levels above it too, so popping back up the stack
    reopens from the root once per :data:`WINDOW` levels.

    Raises:
        OSError: a folder on the way is gone, or is not the one listed (``ESTALE``).
    """
    target = stack[index]
    by_depth = {f.depth: f for f in stack[max(0, index - WINDOW) : index + 1] if f.fd is None}
    keep_from = target.depth - WINDOW + 1
    top = by_depth.get(0)
    if top is not None and keep_from <= 0:
        fd = os.open(".", _DIR_FLAGS, dir_fd=root)
        top.fd = fd
    current, kept, depth = root, True, 0  # kept: ``current`` is not ours to close
    try:
        for name in target.rel.split("/") if target.rel else []:
            fd, st = _sub(current, name, dev)
            if not kept:
                os.close(current)
            current, kept, depth = fd, False, depth + 1
            frame = by_depth.get(depth)
            if frame is not None and depth >= keep_from:
                if (st.st_dev, st.st_ino) != frame.ident:
                    raise OSError(errno.ESTALE, f"{frame.rel!r} changed while it was read")
                frame.fd, kept = fd, True
    finally:
        if not kept:
            os.close(current)


def walk(
    root: int, *, skip: Skip | None = None, fallback: bool = False
) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry beneath ``root`` as ``(relative path, lstat)``, folders before
    their contents, each folder's entries together (sorted).

    Each folder is opened relative to its parent's descriptor by its own name only
    (``O_NOFOLLOW | O_DIRECTORY``, checked to be a folder on ``root``'s device), so
    a tree of any depth is walked (no path is ever near ``PATH_MAX``) and a folder
    swapped for a symlink is never entered. The walk is iterative and keeps at most
    :data:`WINDOW` folders open: a folder whose subfolders are all entered is
    closed before its last one is; deeper than the window, the shallowest open
    folder is closed and reopened later from ``root`` (checked to be the same
    folder). A folder that cannot be entered or listed (or was swapped meanwhile)
    is reported to ``skip`` with the reason, never dropped silently; entries that
    vanish between the listing and their ``lstat`` are gone and not reported.
    ``fallback`` is accepted for symmetry with :func:`open_beneath` (the walk never
    resolves a path).
    """
    del fallback
    dev = os.fstat(root).st_dev

    def note(rel: str, exc: OSError) -> None:
        if skip is not None:
            skip(rel, f"not read: {exc.strerror or exc}")

    def listed(
        fd: int, rel: str, depth: int, ident: tuple[int, int]
    ) -> Iterator[tuple[str, os.stat_result]]:
        subs: list[str] = []
        try:
            try:
                names = sorted(os.listdir(fd))
            except OSError as exc:
                note(rel or ".", exc)
                os.close(fd)
                return
            for name in names:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                child = f"{rel}/{name}" if rel else name
                yield child, st
                if stat.S_ISDIR(st.st_mode):
                    subs.append(name)
        except BaseException:  # the caller stopped early: ``fd`` is not on the stack yet
            os.close(fd)
            raise
        subs.reverse()
        stack.append(_Frame(rel, ident, subs, depth, fd))

    stack: list[_Frame] = []
    top = os.open(".", _DIR_FLAGS, dir_fd=root)
    st = os.fstat(top)
    try:
        yield from listed(top, "", 0, (st.st_dev, st.st_ino))
        while stack:
            frame = stack[-1]
            if not frame.todo:
                if frame.fd is not None:
                    os.close(frame.fd)
                stack.pop()
                continue
            name = frame.todo.pop()
            rel = f"{frame.rel}/{name}" if frame.rel else name
            try:
                if frame.fd is None:
                    _reopen(root, dev, stack, len(stack) - 1)
                assert frame.fd is not None
                fd, st = _sub(frame.fd, name, dev)
            except OSError as exc:
                note(rel, exc)
                continue
            if not frame.todo and frame.fd is not None:  # done with it: close it now
                os.close(frame.fd)
                stack.pop()
            yield from listed(fd, rel, frame.depth + 1, (st.st_dev, st.st_ino))
            # the open frames are the stack's top ones: close the one past the window
            if len(stack) > WINDOW and (old := stack[-WINDOW - 1]).fd is not None:
                os.close(old.fd)
                old.fd = None
    finally:
        for frame in stack:
            if frame.fd is not None:
                os.close(frame.fd)


@dataclass
class Entry:
    """One file as :func:`entry` found it."""

    st: os.stat_result
    """Its ``lstat`` (for a regular file, the ``fstat`` of :attr:`fd`)."""
    link: str | None = None
    """A symlink's target text (never followed)."""
    fd: int | None = None
    """An open descriptor of a regular file (the caller closes it)."""

    def close(self) -> None:
        """Close :attr:`fd` if open."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class Folders:
    """Opens folders beneath ``root`` for :func:`entry`, starting from the last one it
    opened when the next is beneath it (sorted paths share their parents, so a tree
    of any depth costs one ``open`` a folder), else from ``root``. A path too long
    for one ``openat2`` (``PATH_MAX``) is walked one component at a time. Holds one
    descriptor; :meth:`close` it."""

    def __init__(self, root: int) -> None:
        self.root = root
        self._rel = ""
        self._fd: int | None = None

    def open(self, rel: str, *, fallback: bool = False) -> int:
        """A descriptor of folder ``rel`` (borrowed: valid until the next call).

        Raises:
            OSError: as :func:`open_beneath`.
        """
        if self._fd is not None and rel == self._rel:
            return self._fd
        base, rest = self.root, rel
        if self._fd is not None and self._rel and rel.startswith(self._rel + "/"):
            base, rest = self._fd, rel[len(self._rel) + 1 :]
        long = len(os.fsencode(rest)) >= 4000
        fd = open_beneath(base, rest, os.O_PATH | os.O_DIRECTORY, fallback=fallback or long)
        self.close()
        self._rel, self._fd = rel, fd
        return fd

    def close(self) -> None:
        """Close the folder held, if any."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def entry(root: int, rel: str, *, fallback: bool = False, folders: Folders | None = None) -> Entry:
    """What ``rel`` beneath ``root`` is now: its ``lstat``, a symlink's target text,
    or, for a regular file, an open read-only descriptor checked (``fstat``) to be
    the very file ``lstat`` saw. Its parent folder is opened with
    :func:`open_beneath`; the file itself relative to that folder with
    ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO cannot block the reader). ``folders``
    (shared by the calls for one snapshot) opens the parent from the last one.

    Raises:
        OSError: it is gone, or its path crosses a symlink or leaves ``root``.
    """
    parts = _parts(rel)
    if not parts:
        raise OSError(errno.EINVAL, "the root itself has no entry")
    own = folders is None
    opener = Folders(root) if folders is None else folders
    parent = opener.open("/".join(parts[:-1]), fallback=fallback)
    name = parts[-1]
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            return Entry(st, link=os.readlink(name, dir_fd=parent))
        if not stat.S_ISREG(st.st_mode):
            return Entry(st)
        fd = os.open(
            name,
            os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
            dir_fd=parent,
        )
        got = os.fstat(fd)
        if not stat.S_ISREG(got.st_mode) or (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise OSError(errno.ESTALE, f"{rel!r} changed while it was opened")
        return Entry(got, fd=fd)
    finally:
        if own:
            opener.close()
