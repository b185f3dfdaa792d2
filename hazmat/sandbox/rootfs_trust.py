"""Trust in the root file system cache (:mod:`hazmat.sandbox.rootfs`): who may change it.

Root's later sandboxes run on the cached trees, and the cache is written as the caller
(root, usually). A cache folder another user owns or can write would let that user swap a
tree for one of their own, or turn root's in-progress folder into a symlink so root writes
(and deletes) elsewhere on the host. So:

- :func:`check_trusted` refuses a folder when a component of its path, from ``/`` down,
  is owned by anyone but root or the caller, or is writable by group/others without the
  sticky bit; a sticky ``/tmp``-like parent is allowed, the folder itself never is.
- :func:`check_reachable` refuses, for a caller whose sandboxes run as ids of their own
  (root), a folder those ids cannot search (a private ``0700`` cache).
- :func:`trusted_entry` is the check at use: a cached tree and its folder are real
  folders (not symlinks), root's or the caller's, and not writable by others.
- :func:`open_dir` and :func:`open_lock` open without following symlinks;
  :func:`finish_tree` works relative to descriptors; :func:`unchanged` checks the folders
  of a tree being made were not swapped before it is renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from hazmat.errors import ConfigError, ImageError

__all__ = [
    "MOUNT_POINTS",
    "NEVER_SHOWN",
    "check_reachable",
    "check_trusted",
    "finish_tree",
    "locked",
    "open_dir",
    "open_lock",
    "problem",
    "trusted_entry",
    "unchanged",
    "unreachable",
]

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _owners() -> set[int]:
    return {0, os.geteuid()}


def _components(path: Path) -> list[Path]:
    """``path`` and its parents, from ``/`` down (``path`` absolute, not resolved)."""
    path = Path(os.path.abspath(path))
    return [*reversed(path.parents), path]


def problem(path: Path) -> str | None:
    """What makes ``path`` (a folder, existing or not yet) untrusted, or None.

    Every existing component of ``path`` and of its resolved form (``lstat``; a symlink's
    own owner counts, then its target is checked through the resolved path) must be owned
    by root or the caller; a group/other-writable one must carry the sticky bit and must
    not be ``path`` itself (nor, resolved, its target)."""
    paths = [_components(path)]
    real = Path(os.path.realpath(path))
    if real != Path(os.path.abspath(path)):
        paths.append(_components(real))
    for chain in paths:
        last = chain[-1]
        for comp in chain:
            try:
                st = os.lstat(comp)
            except FileNotFoundError:
                break  # made later by the caller (checked again once it exists)
            except OSError as exc:
                return f"{comp} cannot be examined ({exc.strerror})"
            if st.st_uid not in _owners():
                mine = "" if os.geteuid() == 0 else f" or uid {os.geteuid()}"
                return f"{comp} is owned by uid {st.st_uid} (not root{mine})"
            if stat.S_ISLNK(st.st_mode):
                continue
            if not stat.S_ISDIR(st.st_mode):
                return f"{comp} is not a folder"
            if st.st_mode & _OTHERS_WRITE:
                mode = f"mode {stat.S_IMODE(st.st_mode):04o}"
                if comp == last:
                    return f"{comp} is writable by other users ({mode})"
                if not st.st_mode & stat.S_ISVTX:
                    return f"{comp} is writable by other users without the sticky bit ({mode})"
    return None


def _label(path: Path, name: str | None) -> str:
    return f"{name}={path}" if name else f"the root file system cache {path}"


def check_trusted(path: Path, name: str | None) -> None:
    """Refuse a cache folder other users could change (see the module docstring).

    Raises:
        ConfigError: one line naming the folder (and ``name``, the variable it came
            from), the owner/mode problem and the fix.
    """
    why = problem(path)
    if why is not None:
        unset = f", or unset {name}" if name else ""
        raise ConfigError(
            f"{_label(path, name)} cannot hold root file systems: {why}; another user could "
            "change the trees sandboxes run on",
            hint=f"use a folder only root{'' if os.geteuid() == 0 else ' or you'} can "
            f"write (chown/chmod it){unset}",
        )


def unreachable(path: Path) -> str | None:
    """The first existing component of ``path`` (resolved) others cannot search, or None."""
    for comp in _components(Path(os.path.realpath(path))):
        try:
            st = os.stat(comp)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{comp} cannot be examined ({exc.strerror})"
        if not st.st_mode & stat.S_IXOTH:
            return f"{comp} is mode {stat.S_IMODE(st.st_mode):04o}"
    return None


def check_reachable(path: Path, name: str | None) -> None:
    """As root (the local sandbox runs as ids of its own), refuse a cache those ids
    cannot search: each sandbox would fail to start on a tree it cannot see.

    Raises:
        ConfigError: ``"NAME=PATH is mode 0700: the sandbox's ids cannot read it"``.
    """
    if os.geteuid() != 0:
        return
    why = unreachable(path)
    if why is not None:
        real = os.path.realpath(path)
        own = why.startswith(f"{real} ")
        label = _label(path, name)
        text = f"{label} {why[len(real) + 1 :]}" if own else f"{label}: {why}"
        unset = f" or unset {name}" if name else ""
        raise ConfigError(
            f"{text}: the sandbox's ids cannot read it",
            hint=f"chmod 755 it{'' if own else ' (and its parents)'}{unset}",
        )


def trusted_entry(path: Path) -> bool:
    """``path`` is a real folder (``lstat``: not a symlink), owned by root or the caller,
    and not writable by group/others (a cached tree, or its ``<hash>`` folder)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid in _owners() and not st.st_mode & _OTHERS_WRITE


def open_dir(name: str | Path, dir_fd: int | None = None) -> int:
    """A descriptor of the folder ``name`` (relative to ``dir_fd``), never through a
    symlink as its last component.

    Raises:
        OSError: ``ELOOP`` for a symlink, ``ENOTDIR`` for anything but a folder.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, dir_fd=dir_fd)


def open_lock(path: Path) -> int:
    """Open (create, ``0600``) a lock file without following a symlink at ``path``.

    Raises:
        OSError: ``ELOOP`` when ``path`` is a symlink.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, 0o600)


def unchanged(paths: list[Path], before: list[os.stat_result]) -> None:
    """Refuse when a folder of the tree being made was replaced (another inode, a
    symlink, another owner) since it was made.

    Raises:
        ImageError: one was.
    """
    for path, was in zip(paths, before, strict=True):
        try:
            now = os.lstat(path)
        except OSError as exc:
            raise ImageError(f"{path} disappeared while the tree was made ({exc})") from None
        same = (now.st_dev, now.st_ino, now.st_uid) == (was.st_dev, was.st_ino, was.st_uid)
        if not same or not stat.S_ISDIR(now.st_mode):
            raise ImageError(f"{path} was replaced while the tree was made; refused")


_THREADS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``path``'s exclusive lock (flock, so other processes wait too); the lock file
    is opened ``0600`` without following a symlink.

    Raises:
        ImageError: the lock cannot be opened (``path`` is a symlink, ...).
    """
    with _GUARD:
        lock = _THREADS.setdefault(str(path), threading.Lock())
    with lock:
        try:
            fd = open_lock(path)
        except OSError as exc:
            raise ImageError(f"cannot open the lock {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


NEVER_SHOWN = ("etc/shadow", "etc/shadow-", "etc/gshadow", "etc/gshadow-", "etc/machine-id")
"""Removed from every tree: the image's password hashes (the sandbox's users are its own)."""
MOUNT_POINTS = (
    "etc/passwd",
    "etc/group",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/nsswitch.conf",
)
"""Plain files in every tree: the local sandbox binds its synthesized ones over them."""


def finish_tree(tree: Path) -> None:
    """Ready a made tree for binding: :data:`NEVER_SHOWN` removed, :data:`MOUNT_POINTS`
    plain files (a symlink there is replaced: a bind over it would follow it). Works
    relative to descriptors of ``tree`` and its ``etc`` opened without following
    symlinks, so nothing outside the tree is ever unlinked or written.

    Raises:
        ImageError: the tree or its ``/etc`` is not a real folder.
    """
    try:
        top = open_dir(tree)
    except OSError as exc:
        raise ImageError(f"the root file system {tree} is not a folder ({exc.strerror})") from None
    try:
        os.fchmod(top, 0o755)
        try:
            etc = open_dir("etc", dir_fd=top)
        except OSError:
            raise ImageError("the root file system has no /etc folder") from None
        try:
            _finish_etc(etc)
        finally:
            os.close(etc)
    finally:
        os.close(top)


def _finish_etc(etc: int) -> None:
    for rel in NEVER_SHOWN:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            os.unlink(rel.removeprefix("etc/"), dir_fd=etc)
    for rel in MOUNT_POINTS:
        name = rel.removeprefix("etc/")
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=etc, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            continue
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=etc)
        elif st is not None:
            continue  # a folder: left as it is (the plan binds the folder's entries)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o644, dir_fd=etc)
        try:
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
