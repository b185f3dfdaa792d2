"""Placing ``spec.files`` in Docker containers, with their modes and owners.

Paths in the volumes (``/tmp`` and the workspace) are put with ``put_archive`` into the
running container (:func:`put_into_mounts`); other paths go into the container before
it starts (writable root) or into a per-episode image (read-only root, see
:meth:`Maker.commit_with_files`). The daemon sets owners: no capability is needed.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from typing import Any

from hazmat.sandbox.base import FileSpec

__all__ = ["files_tar", "put_into_mounts", "under"]


def under(path: str, roots: list[str]) -> bool:
    """True when ``path`` is one of ``roots`` or below one."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def files_tar(
    files: dict[str, FileSpec], ids: Callable[[str], tuple[int, int]], root: str
) -> bytes:
    """A tar of ``files`` (absolute paths under ``root``) with names relative to ``root``.

    Below a mount root, missing parent folders get entries owned like the file, so the
    owner can write next to it; at ``/`` parents are left to the existing tree.
    """
    buf = io.BytesIO()
    now = int(time.time())
    base = root.rstrip("/")
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        made: set[str] = set()
        for path in sorted(files):
            spec = files[path]
            uid, gid = ids(spec.owner)
            rel = path[len(base) :].lstrip("/")
            if base:
                parts = rel.split("/")[:-1]
                for i in range(len(parts)):
                    folder = "/".join(parts[: i + 1])
                    if folder in made:
                        continue
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.uid, info.gid, info.mtime = (
                        tarfile.DIRTYPE,
                        0o755,
                        uid,
                        gid,
                        now,
                    )
                    tar.addfile(info)
            data = spec.data()
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.uid, info.gid, info.mtime = (
                len(data),
                spec.mode,
                uid,
                gid,
                now,
            )
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put_into_mounts(
    api: Any,
    cid: str,
    files: dict[str, FileSpec],
    roots: list[str],
    ids: Callable[[str], tuple[int, int]],
) -> None:
    """``put_archive`` ``files`` into the volume mounted at each of ``roots`` (a running
    container; ``ids`` gives the uid/gid of an owner)."""
    groups: dict[str, dict[str, FileSpec]] = {}
    for path, spec in files.items():
        root = next(r for r in sorted(roots, key=len, reverse=True) if under(path, [r]))
        groups.setdefault(root, {})[path] = spec
    for root, mine in groups.items():
        api.put_archive(cid, root, files_tar(mine, ids, root))
