"""Writing a local sandbox's changed files into ``changes.tar``, safely and within a cap.

Each file is read through :func:`~hazmat.sandbox.local.beneath.entry` (never by a
path the agent could redirect): folders and symlinks (their target text) as they
are, FIFOs as FIFOs, regular files from the descriptor that was checked to be them.
Sockets and devices are listed in ``changes.json`` only.

Sparse files (holes found with ``SEEK_DATA``/``SEEK_HOLE``) are stored sparsely, in
the POSIX (pax) form of GNU tar's sparse format 1.0, which GNU tar and Python's
``tarfile`` both read back as the full-size file: the member's data is a map
(``count``, then ``offset``/``length`` pairs, one number a line, padded to 512 bytes)
followed by the stored stretches only; ``GNU.sparse.name``/``GNU.sparse.realsize``
give the real name and size. So four ``truncate -s 512M`` files take a few KiB.

The archive is cut at ``cap`` bytes (headers included): a file that no longer fits
is left out, and the caller records each left-out path with its size and why.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass, field

from hazmat.sandbox.local.beneath import Entry, Folders, entry
from hazmat.sandbox.local.disk import data_extents

__all__ = ["LEFT_OUT_BYTES", "SNAPSHOT_CAP", "Archiver", "readable"]


def readable(path: str) -> str:
    """``path`` as valid text: bytes that are not UTF-8 (an agent's ``b'\\x9b31m'``)
    become ``\\xNN`` escapes, so every record can write it."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


SNAPSHOT_CAP = 256 * 1024 * 1024
"""Default largest ``changes.tar`` (bytes), as on the Docker backend."""
HEADER_COST = 3 * tarfile.BLOCKSIZE
"""What one member's headers take at most in this archive (ustar + a pax header)."""
MAX_STRETCHES = 65536
"""More stretches than this are merged, smallest holes first (they become stored
zeros); the map then takes at most about 1.5 MiB."""
LEFT_OUT_BYTES = 8 << 20
"""Most bytes of ``left_out`` notes kept (the rest are counted in ``left_out_more``)."""


def _blocks(n: int) -> int:
    return n + (-n % tarfile.BLOCKSIZE)


class _Stretches(io.RawIOBase):
    """Reads ``head`` and then each ``(offset, length)`` stretch of ``fd`` in turn,
    exactly ``len(head) + sum(lengths)`` bytes (zeros where the file came up short)."""

    def __init__(self, fd: int, head: bytes, stretches: list[tuple[int, int]]) -> None:
        super().__init__()
        self._fd = fd
        self._head = head
        self._todo = list(reversed(stretches))

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); fewer only at the end."""
        out = bytearray()
        while size < 0 or len(out) < size:
            room = -1 if size < 0 else size - len(out)
            if self._head:
                take = self._head if room < 0 else self._head[:room]
                self._head = self._head[len(take) :]
                out += take
                continue
            if not self._todo:
                break
            offset, length = self._todo.pop()
            want = length if room < 0 else min(room, length, 1 << 20)
            data = os.pread(self._fd, want, offset)
            out += data + bytes(want - len(data))
            if want < length:
                self._todo.append((offset + want, length - want))
        return bytes(out)


def _merge(stretches: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """At most :data:`MAX_STRETCHES` stretches: the smallest holes between them are
    filled (stored as zeros) until few enough are left."""
    if len(stretches) <= MAX_STRETCHES:
        return stretches
    holes = sorted(
        range(1, len(stretches)),
        key=lambda i: stretches[i][0] - sum(stretches[i - 1]),
    )
    filled = set(holes[: len(stretches) - MAX_STRETCHES])
    out: list[tuple[int, int]] = []
    for i, (start, length) in enumerate(stretches):
        if i in filled:
            out[-1] = (out[-1][0], start + length - out[-1][0])
        else:
            out.append((start, length))
    return out


@dataclass
class Archiver:
    """Adds sandbox files to an open tar file, keeping its size under ``cap``."""

    tar: tarfile.TarFile | None
    """The open archive (set before :meth:`add`)."""
    cap: int = SNAPSHOT_CAP
    names: dict[int, str] = field(default_factory=dict)
    """Host uid -> user name (``root``, ``agent``)."""
    id_base: int = 0
    """Host id of the sandbox's root: owners are stored as the sandbox's own ids."""
    used: int = 2 * tarfile.RECORDSIZE
    """Bytes the archive takes so far (with its end blocks and record padding)."""
    sparse: list[str] = field(default_factory=list)
    """Paths stored sparsely."""
    left_out: list[dict[str, object]] = field(default_factory=list)
    """``{"path", "size", "why"}`` of each file not archived (at most
    :data:`LEFT_OUT_BYTES` of them; paths as :func:`readable` text)."""
    left_out_more: int = 0
    """How many more were left out than :attr:`left_out` lists."""
    over_cap: bool = False
    """True once a file was left out for the cap."""
    _left_bytes: int = 0
    _links: dict[tuple[int, int], str] = field(default_factory=dict)
    """``(st_dev, st_ino)`` -> member name of each archived file with other links."""
    _folders: dict[int, Folders] = field(default_factory=dict)

    def leave_out(self, path: str, size: int, why: str) -> None:
        """Note that ``path`` (``size`` bytes) is not archived, and why."""
        if why.startswith("over the snapshot cap"):
            self.over_cap = True
        note: dict[str, object] = {"path": readable(path), "size": size, "why": why}
        cost = len(str(note)) + 16
        if self._left_bytes + cost > LEFT_OUT_BYTES:
            self.left_out_more += 1
            return
        self._left_bytes += cost
        self.left_out.append(note)

    def close(self) -> None:
        """Close the folders held open for reading (see :class:`~.beneath.Folders`)."""
        for folders in self._folders.values():
            folders.close()
        self._folders.clear()

    def add(self, root: int, rel: str, path: str) -> None:
        """Archive ``rel`` beneath the folder descriptor ``root`` as sandbox ``path``
        (what it is now: see the module docstring). Gone, or not reachable without a
        symlink: left out with the reason."""
        folders = self._folders.get(root)
        if folders is None:
            folders = self._folders[root] = Folders(root)
        try:
            found = entry(root, rel, folders=folders)
        except OSError as exc:
            self.leave_out(path, 0, f"unreadable: {exc.strerror or exc}")
            return
        try:
            self._add(found, path)
        finally:
            found.close()

    def _info(self, found: Entry, name: str) -> tarfile.TarInfo:
        st = found.st
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime = int(st.st_mtime)
        info.uid, info.gid = self._id(st.st_uid), self._id(st.st_gid)
        info.uname = self.names.get(st.st_uid, "")
        info.gname = self.names.get(st.st_gid, "")
        return info

    def _id(self, host: int) -> int:
        inside = host - self.id_base
        return inside if self.id_base and 0 <= inside < 65536 else host

    def _add(self, found: Entry, path: str) -> None:
        st, name = found.st, path.lstrip("/")
        info = self._info(found, name)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif found.link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, found.link
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif found.fd is None:
            self.leave_out(path, st.st_size, "not a file")
            return
        if found.fd is None:
            self._put(info, None, path, 0)
            return
        ident = (st.st_dev, st.st_ino)
        first = self._links.get(ident) if st.st_nlink > 1 else None
        if first is not None:  # another name of a file archived already: a hard link
            info.type, info.linkname = tarfile.LNKTYPE, first
            self._put(info, None, path, 0)
            return
        if st.st_nlink > 1 and self._put_file(found, info, path):
            self._links[ident] = name
            return
        self._put_file(found, info, path)

    def _put_file(self, found: Entry, info: tarfile.TarInfo, path: str) -> bool:
        """Archive the regular file ``found`` (sparse when it has holes); True if it
        went in."""
        assert found.fd is not None
        st, name = found.st, info.name
        size = st.st_size
        stretches = _merge(data_extents(found.fd, size))
        stored = sum(length for _, length in stretches)
        if stretches == [(0, size)] or size == 0:
            info.size = size
            return self._put(info, _Stretches(found.fd, b"", stretches), path, size)
        # a last, empty stretch at the real size: GNU tar extends the file up to it
        entries = [*stretches, (size, 0)]
        lines = [str(len(entries))] + [f"{o}\n{n}" for o, n in entries]
        head = ("\n".join(lines) + "\n").encode()
        head += bytes(-len(head) % tarfile.BLOCKSIZE)
        info.name = f"GNUSparseFile.0/{len(self.sparse)}"
        info.size = len(head) + stored
        info.pax_headers = {
            "GNU.sparse.major": "1",
            "GNU.sparse.minor": "0",
            "GNU.sparse.name": name,
            "GNU.sparse.realsize": str(size),
        }
        if self._put(info, _Stretches(found.fd, head, stretches), path, size):
            self.sparse.append(path)
            return True
        return False

    def _put(self, info: tarfile.TarInfo, data: io.RawIOBase | None, path: str, size: int) -> bool:
        """Add one member unless it would pass the cap (then note it); True if added."""
        assert self.tar is not None
        cost = HEADER_COST + _blocks(info.size)
        if info.pax_headers:
            cost += _blocks(len(str(info.pax_headers)))
        if self.used + cost > self.cap:
            stored = (
                f" ({info.size} bytes stored, with its sparse map)" if size != info.size else ""
            )
            why = f"over the snapshot cap of {self.cap} bytes{stored}"
            self.leave_out(path, size, why)
            return False
        self.tar.addfile(info, data)
        self.used += cost
        return True
