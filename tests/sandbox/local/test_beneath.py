"""Reading beneath a folder descriptor (openat2, and the O_NOFOLLOW walk without it),
against real files, real symlinks and a real swap race."""

from __future__ import annotations

import ctypes
import errno
import os
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
