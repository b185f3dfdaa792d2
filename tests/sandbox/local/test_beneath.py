"""Reading beneath a folder descriptor (openat2, and the O_NOFOLLOW walk without it),
against real files, real symlinks and a real swap race."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import threading
from pathlib import Path

import pytest

from hazmat.sandbox.local.beneath import entry, have_openat2, open_beneath, open_root, walk

pytestmark = [pytest.mark.timeout(60)]

WAYS = [pytest.param(False, id="openat2"), pytest.param(True, id="component-walk")]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """``root/a/b/f``, ``root/a/l -> host``, ``root/a/lf -> host/secret``; ``host/secret``."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("HOST-SECRET")
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("inside")
    (root / "a" / "l").symlink_to(host)
    (root / "a" / "lf").symlink_to(host / "secret")
    return root, host


def test_this_kernel_has_openat2() -> None:
    assert have_openat2(), "Linux 5.6+ expected on the lab's machines"


@pytest.mark.parametrize("fallback", WAYS)
def test_no_symlink_is_followed_on_the_way_or_at_the_end(
    tree: tuple[Path, Path], fallback: bool
) -> None:
    root, host = tree
    fd = open_root(str(root))
    try:
        found = entry(fd, "a/b/f", fallback=fallback)
        assert found.fd is not None and os.read(found.fd, 100) == b"inside"
        found.close()
        link = entry(fd, "a/lf", fallback=fallback)
        assert link.fd is None and link.link == str(host / "secret")
        for rel in ("a/l/secret", "a/lf"):
            with pytest.raises(OSError) as exc:
                os.close(open_beneath(fd, rel, os.O_RDONLY, fallback=fallback))
            assert exc.value.errno in (errno.ELOOP, errno.ENOTDIR), rel
        with pytest.raises(OSError) as exc:
            entry(fd, "a/l/secret", fallback=fallback)
        assert exc.value.errno in (errno.ELOOP, errno.ENOTDIR)
        for rel in ("../host/secret", "a/../../host/secret", "/etc/passwd"):
            with pytest.raises(OSError) as exc:
                entry(fd, rel, fallback=fallback)
            assert exc.value.errno == errno.EXDEV, rel
        listed = dict(walk(fd, fallback=fallback))
        assert sorted(listed) == ["a", "a/b", "a/b/f", "a/l", "a/lf"]
    finally:
        os.close(fd)


@pytest.mark.parametrize("fallback", WAYS)
def test_a_folder_swapped_with_a_symlink_in_a_tight_loop_is_never_read_through(
    tmp_path: Path, fallback: bool
) -> None:
    """No freeze at all: a thread exchanges ``root/d`` (a real folder holding ``secret``,
    a decoy) with ``root/l`` (a symlink to a host folder holding ``secret``) as fast as
    it can, while the reader lists and reads ``d/secret`` and ``l/secret`` again and
    again: it only ever gets the decoy."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("HOST-SECRET")
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "secret").write_text("decoy")
    (root / "l").symlink_to(host)
    libc = ctypes.CDLL(None, use_errno=True)
    stop = threading.Event()
    swaps = [0]

    def race() -> None:
        a, b = os.fsencode(root / "d"), os.fsencode(root / "l")
        while not stop.is_set():
            libc.renameat2(-100, a, -100, b, 2)
            swaps[0] += 1

    thread = threading.Thread(target=race)
    thread.start()
    fd = open_root(str(root))
    got: set[bytes] = set()
    try:
        for _ in range(3000):
            for rel, _st in walk(fd, fallback=fallback):
                if not rel.endswith("/secret"):
                    continue
                try:
                    found = entry(fd, rel, fallback=fallback)
                except OSError:
                    continue
                if found.fd is not None:
                    got.add(os.read(found.fd, 100))
                found.close()
    finally:
        stop.set()
        thread.join()
        os.close(fd)
    assert swaps[0] > 1000, swaps
    assert got == {b"decoy"}, got


def _deep(top: Path, levels: int, name: str = "d", side: bool = True) -> None:
    """``levels`` nested folders under ``top`` (each with an empty ``e`` beside the
    next when ``side``), a file ``bottom`` at the end; by descriptor (past PATH_MAX)."""
    cur = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=cur)
            if side:
                os.mkdir("e", dir_fd=cur)
            nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=cur)
            os.close(cur)
            cur = nxt
        os.close(os.open("bottom", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=cur))
    finally:
        os.close(cur)


def test_a_tree_past_path_max_is_walked_whole_with_a_bounded_number_of_descriptors(
    tmp_path: Path,
) -> None:
    """17 folders of 250-char names (past PATH_MAX: a walk by whole relative paths lost
    everything below) and 3000 levels with a side folder at each level (the walk must
    come back up through closed folders): every entry is listed, no folder is
    skipped, and the walk never holds more than WINDOW folders open."""
    tree = tmp_path / "tree"
    tree.mkdir()
    try:
        _walk_deep(tree)
    finally:  # GNU rm removes any depth; pytest's own cleanup recurses (and crashes)
        subprocess.run(["rm", "-rf", str(tree)], check=True, timeout=120)


def _walk_deep(tmp_path: Path) -> None:
    from hazmat.sandbox.local import beneath

    _deep(tmp_path, 17, "x" * 250, side=False)
    _deep(tmp_path, 3000)
    root = open_root(str(tmp_path))
    skipped: list[tuple[str, str]] = []
    before = len(os.listdir("/proc/self/fd"))
    most = 0
    try:
        found = []
        for n, item in enumerate(walk(root, skip=lambda r, w: skipped.append((r, w)))):
            found.append(item[0])
            if n % 97 == 0:
                most = max(most, len(os.listdir("/proc/self/fd")) - before)
    finally:
        os.close(root)
    assert skipped == []
    assert len(found) == 17 + 1 + 3000 * 2 + 1
    bottoms = [p for p in found if p.endswith("/bottom")]
    assert len(bottoms) == 2 and any(len(p) > 4096 for p in bottoms)
    assert most <= beneath.WINDOW + 4, most


def test_entry_reads_a_file_past_path_max(tmp_path: Path) -> None:
    """:func:`entry` (with and without a shared :class:`Folders`) reads a file whose
    path is far longer than PATH_MAX."""
    from hazmat.sandbox.local.beneath import Folders

    _deep(tmp_path, 20, "y" * 250, side=False)
    rel = "/".join(["y" * 250] * 20) + "/bottom"
    root = open_root(str(tmp_path))
    folders = Folders(root)
    try:
        for shared in (None, folders, folders):
            found = entry(root, rel, folders=shared)
            assert found.fd is not None
            found.close()
    finally:
        folders.close()
        os.close(root)


def test_a_folder_that_cannot_be_entered_is_reported_not_dropped(tmp_path: Path) -> None:
    """A folder on another mount (here a tmpfs mounted in the tree) is not entered,
    and the walk says so with the reason."""
    inner = tmp_path / "a" / "mnt"
    inner.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(inner)], check=True)
    try:
        (inner / "secret").write_text("x")
        root = open_root(str(tmp_path))
        skipped: list[tuple[str, str]] = []
        try:
            found = [r for r, _ in walk(root, skip=lambda r, w: skipped.append((r, w)))]
        finally:
            os.close(root)
    finally:
        subprocess.run(["umount", "-l", str(inner)], check=True)
    assert "a/mnt" in found and "a/mnt/secret" not in found
    assert [r for r, _ in skipped] == ["a/mnt"] and "mount" in skipped[0][1], skipped


def test_a_walk_stopped_early_leaves_no_descriptor_open(tmp_path: Path) -> None:
    """A caller that stops the walk (a snapshot past its cap or deadline) closes every
    folder the walk held, the one being listed included."""
    _deep(tmp_path, 200)
    root = open_root(str(tmp_path))
    before = sorted(os.listdir("/proc/self/fd"))
    try:
        for stop in (1, 3, 150):
            items = walk(root)
            for _ in range(stop):
                next(items)
            items.close()
            assert sorted(os.listdir("/proc/self/fd")) == before, stop
    finally:
        os.close(root)
