"""A bound on a local sandbox's total disk use: its backing folder is a filesystem image.

Every writable dir of a local sandbox (``/tmp``, ``/root``, the home, the workdir, the
shell state) lives in its backing folder (:mod:`.folders`). Run as root of the host,
that folder is the mount point of an ext4 filesystem of :func:`disk_bytes` bytes in a
sparse image file (made as ``<backing folder>.img`` and unlinked at once: only the
loop device and a descriptor hold it), attached to a loop device with auto-clear:
writes past the bound fail with ``ENOSPC`` inside the sandbox, and the host spends at
most the image's size.

The host's mount lives only while the sandbox starts: once bubblewrap has bound the
writable dirs into the sandbox's own mount namespace, :meth:`Disk.release_host`
detaches it (``MNT_DETACH``). From then on the filesystem is held by the sandbox's
namespace and by the backing folder's descriptor (through which snapshots read it),
so when the sandbox dies, even with the host process killed, the filesystem, the
loop device and the image's blocks go with it: nothing stays mounted on the host.

The image is a copy of a template formatted once per host process (``mke2fs``, no
journal, lazily initialised inode tables; the copy writes its ~150 KiB of metadata),
attached with ``LOOP_CONFIGURE`` and mounted with ``mount(2)`` directly: one to a few
milliseconds, spent in a worker thread while bubblewrap starts (:mod:`.sandbox`).

Why not a size-limited tmpfs: its pages are memory, charged to the sandbox's memory
cgroup, so a full disk would become an out-of-memory kill of the supervisor (the
failure issue 13 found on Docker), and each sandbox could pin its disk bound in RAM.

A loop device missing from a static ``/dev`` (a container's holds ``loop0``-``loop7``)
is made with ``mknod`` as ``losetup`` does. Run as root on a host with loop devices
(``/dev/loop-control``), a sandbox whose image cannot be attached does not start
(:class:`~hazmat.errors.SandboxStartError`) unless ``HAZMAT_LOCAL_DISK=unbounded``
(:data:`UNBOUNDED_ENV`) is set. Then, and without the rights (not root, no loop
devices), the backing folder is a plain folder: disk use is bounded per file only,
which :attr:`~hazmat.sandbox.local.folders.Backing.disk_problem`, ``info()["disk"]``
and a log line say.

Removal: :meth:`Disk.detach` unmounts lazily (if still mounted) and closes the
image; a host process killed while a sandbox starts can leave a mount, which
:func:`~hazmat.sandbox.local.folders.cleanup_leftovers` finds (:func:`mounts_under`)
and unmounts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import structlog

from hazmat.sandbox.base import SandboxSpec
from hazmat.sandbox.local.host import DIR_PREFIX, sandbox_parent

__all__ = [
    "DISK_MB",
    "UNBOUNDED_ENV",
    "Disk",
    "disk_bytes",
    "loop_support",
    "mount_state",
    "mounts_under",
    "unmount",
]

log = structlog.get_logger("hazmat.sandbox.local")

UNBOUNDED_ENV = "HAZMAT_LOCAL_DISK"
"""Set to ``unbounded`` to let a sandbox run as root start without its disk image when
no loop device can be had (its disk use is then bounded per file only)."""

DISK_MB = 1024
"""Default bound of a sandbox's writable dirs together (MiB); at least one file of
``limits.file_size_mb`` plus the spec's files always fits."""

LOOP_CTL_GET_FREE = 0x4C82
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4
MS_NOSUID = 2
MS_NOEXEC = 8
MS_NODEV = 4
MNT_DETACH = 2
_INFO64 = "=5Q4I64s64s32s2Q"
"""``struct loop_info64``."""


def disk_bytes(spec: SandboxSpec) -> int:
    """The disk bound of a sandbox made from ``spec`` (bytes, a multiple of 1 MiB)."""
    files = sum(len(f.data()) for f in spec.files.values())
    least = (spec.limits.file_size_mb << 20) + files + (64 << 20)
    return max(DISK_MB << 20, least + (-least % (1 << 20)))


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


HASH_SEED = "6f1d2c3b-0a49-4e57-9d1c-68617a6d6174"
"""The directory hash seed (and UUID) of every sandbox filesystem: ext4 lists a folder in
hash order, so a per-filesystem random seed would make ``ls -U``/``find`` order differ
between a run and its replay."""

_lock = threading.Lock()
_templates: dict[int, list[tuple[int, bytes]]] = {}


def _template(size: int) -> list[tuple[int, bytes]]:
    """The data extents of a fresh ext4 of ``size`` bytes, formatted once per process.

    Raises:
        OSError: ``mke2fs`` is missing or failed.
    """
    with _lock:
        if size in _templates:
            return _templates[size]
        mke2fs = shutil.which("mke2fs", path="/usr/sbin:/sbin:/usr/bin:/bin")
        if mke2fs is None:
            raise OSError(errno.ENOENT, "mke2fs not found (e2fsprogs)")
        fd, name = tempfile.mkstemp(
            prefix=f"{DIR_PREFIX}{os.getpid()}-template-", suffix=".img", dir=sandbox_parent()
        )
        try:
            os.ftruncate(fd, size)
            inodes = max(8192, min(size // 16384, 1 << 20))
            done = subprocess.run(
                [
                    mke2fs,
                    "-q",
                    "-F",
                    "-t",
                    "ext4",
                    "-b",
                    "4096",
                    "-m",
                    "0",
                    "-N",
                    str(inodes),
                    "-L",
                    "hazmat",
                    "-O",
                    "^has_journal,^resize_inode",
                    "-E",
                    # a fixed directory hash seed: listings come in the same order in
                    # every sandbox, so a replay reads what the recording read
                    f"lazy_itable_init=1,nodiscard,root_owner=0:0,hash_seed={HASH_SEED}",
                    "-U",
                    HASH_SEED,
                    name,
                ],
                capture_output=True,
                timeout=60,
                env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "LANG": "C"},
            )
            if done.returncode != 0:
                why = done.stderr.decode(errors="replace").strip()[-300:]
                raise OSError(errno.EIO, f"mke2fs failed: {why}")
            extents = []
            for start, length in data_extents(fd, size):
                extents.append((start, os.pread(fd, length, start)))
        finally:
            os.close(fd)
            os.unlink(name)
        _templates[size] = extents
        return extents


def data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of each stretch of ``fd`` that holds data, found with
    ``SEEK_DATA``/``SEEK_HOLE`` (one stretch of the whole file where the filesystem
    cannot tell)."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from pos on
                break
            return [(0, size)] if size else []
        if start >= size:
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        out.append((start, end - start))
        pos = end
    return out


def _attach(image: Path) -> tuple[str, int]:
    """Attach ``image`` to a free loop device (auto-clear); returns its path and an
    open descriptor of it (the device clears itself once the last one is closed).

    Raises:
        OSError: no loop device could be had.
    """
    img = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(20):  # another process may take the free device first
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
                device = f"/dev/loop{number}"
                try:
                    loop = _open_loop(device, number)
                except FileNotFoundError:
                    continue
                try:
                    _configure(loop, img)
                except OSError as exc:
                    os.close(loop)
                    if exc.errno == errno.EBUSY:
                        continue
                    raise
                return device, loop
        finally:
            os.close(control)
    finally:
        os.close(img)
    raise OSError(errno.EBUSY, "no free loop device")


LOOP_MAJOR = 7
"""The block major number of loop devices."""


def _open_loop(device: str, number: int) -> int:
    """Open loop device ``number`` at ``device``, making its node first when ``/dev``
    lacks it (a static ``/dev``, as in a container, holds only ``loop0``-``loop7``;
    the kernel made the device on ``LOOP_CTL_GET_FREE``), as ``losetup`` does.

    Raises:
        OSError: the node cannot be made or opened.
    """
    try:
        return os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mknod(device, stat.S_IFBLK | 0o660, os.makedev(LOOP_MAJOR, number))
            log.info("local_loop_node_made", device=device)
        return os.open(device, os.O_RDWR | os.O_CLOEXEC)


def loop_support() -> bool:
    """True when this host can give a sandbox a loop device (``/dev/loop-control``)."""
    return os.path.exists("/dev/loop-control")


def _configure(loop: int, img: int) -> None:
    info = struct.pack(_INFO64, 0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR, b"", b"", b"", 0, 0)
    try:
        config = struct.pack("=2I", img, 0) + info + bytes(64)
        fcntl.ioctl(loop, LOOP_CONFIGURE, config)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTTY):
            raise
        # before Linux 5.8: set the file, then the flags
        fcntl.ioctl(loop, LOOP_SET_FD, img)
        try:
            fcntl.ioctl(loop, LOOP_SET_STATUS64, info)
        except OSError:
            with contextlib.suppress(OSError):
                fcntl.ioctl(loop, LOOP_CLR_FD, 0)
            raise


class Disk:
    """The filesystem image mounted on one sandbox's backing folder."""

    def __init__(self, mountpoint: Path, image: int, size: int, device: str) -> None:
        self.mountpoint = mountpoint
        self._image = image
        """A descriptor of the (unlinked, sparse) image: its blocks are the host disk it
        uses."""
        self.size = size
        self.device = device

    @classmethod
    def attach(cls, mountpoint: Path, size: int) -> Disk:
        """Make a fresh ext4 of ``size`` bytes in an image (unlinked once attached) and
        mount it on the empty folder ``mountpoint`` (``nosuid``, ``nodev``).

        Raises:
            OSError: no ``mke2fs``, no loop device, or the mount failed (nothing is
                left: the image is gone, the loop device clears itself).
        """
        extents = _template(size)
        image = Path(f"{mountpoint}.img")
        fd = os.open(image, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.ftruncate(fd, size)
                for offset, data in extents:
                    os.pwrite(fd, data, offset)
                device, loop = _attach(image)
            finally:
                image.unlink()
            try:
                _check(
                    _libc().mount(
                        device.encode(),
                        os.fsencode(mountpoint),
                        b"ext4",
                        ctypes.c_ulong(MS_NOSUID | MS_NODEV),
                        b"noinit_itable",
                    ),
                    f"mount {device} on {mountpoint}",
                )
            finally:
                os.close(loop)  # auto-clear: the mount now holds the device
        except BaseException:
            os.close(fd)
            unmount(mountpoint)
            raise
        with contextlib.suppress(OSError):
            (mountpoint / "lost+found").rmdir()
        return cls(mountpoint, fd, size, device)

    def used(self) -> int:
        """Bytes of host disk the image takes now (its allocated blocks)."""
        try:
            return os.fstat(self._image).st_blocks * 512
        except OSError:
            return 0

    def release_host(self) -> None:
        """Detach the host's mount (see the module docstring); the filesystem lives on
        in the sandbox's mount namespace and in open descriptors. Idempotent."""
        unmount(self.mountpoint)

    def detach(self) -> None:
        """Unmount the host's mount if still there and close the image: the filesystem,
        the loop device and the image's blocks go once the sandbox's namespace and the
        backing folder's descriptor are gone. Never raises."""
        unmount(self.mountpoint)
        if self._image >= 0:
            with contextlib.suppress(OSError):
                os.close(self._image)
            self._image = -1


STATE_BYTES = 16 << 20
"""Size of the small tmpfs holding a sandbox's shell state (see :func:`mount_state`)."""


def mount_state(path: Path, owner: int) -> None:
    """Mount a tmpfs of :data:`STATE_BYTES` (1024 inodes, ``nosuid,nodev,noexec``,
    mode 0711, owned by ``owner``) on ``path``: the persistent shells' state (working
    directory, variables, the command being run) then lives off the agent's disk, so
    an agent that fills its disk does not silently lose its shell's ``cd``/``export``.
    Its pages are memory charged to the sandbox that writes them: 16 MiB at most.

    Raises:
        OSError: the mount failed.
    """
    options = f"size={STATE_BYTES},nr_inodes=1024,mode=0711,uid={owner},gid={owner}"
    _check(
        _libc().mount(
            b"tmpfs",
            os.fsencode(path),
            b"tmpfs",
            ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC),
            options.encode(),
        ),
        f"mount tmpfs on {path}",
    )


def unmount(path: Path) -> bool:
    """Lazily unmount ``path``; True when it was a mount point."""
    return bool(_libc().umount2(os.fsencode(path), MNT_DETACH) == 0)


def mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below ``folder`` (from ``/proc/self/mountinfo``), deepest
    first."""
    out: list[Path] = []
    prefix = str(folder).rstrip("/")
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) < 5:
                continue
            point = _unescape(fields[4])
            if point == prefix or point.startswith(prefix + "/"):
                out.append(Path(point))
    return sorted(set(out), key=lambda p: -len(p.parts))


def _unescape(field: str) -> str:
    """``/proc/self/mountinfo`` writes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in field:
        return field
    raw = field.encode()
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and len(raw[i + 1 : i + 4]) == 3 and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))
